"""Identifiers: time-ordered ids for rows, random secrets for keys."""

from __future__ import annotations

import hashlib
import os
import secrets
import time


def new_id() -> str:
    """A 26-character, time-ordered, URL-safe id (ULID-like: 48-bit ms time + 80 random bits).

    Time order keeps B-tree inserts append-mostly and makes ids a stable cursor.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(alphabet[rem])
    return "".join(reversed(chars))


def new_secret(prefix: str) -> str:
    """A random key such as ``wk_…`` (write key) or ``sk_…`` (secret key): 192 bits of entropy."""
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a key. Keys are long random strings, so a fast hash is enough (no dictionary to attack)."""
    return hashlib.sha256(secret.encode()).hexdigest()
