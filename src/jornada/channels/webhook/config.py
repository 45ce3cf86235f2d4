"""Outgoing webhook provider settings: the workspace's signing secret, nothing else."""

from __future__ import annotations

import secrets as _secrets
from typing import Any

from jornada.errors import InvalidInput

MIN_SECRET = 32  # characters; a generated secret is 43 (32 random bytes, base64url)


def new_signing_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes, base64url."""
    return "whsec_" + _secrets.token_urlsafe(32)


def validate_webhook(
    options: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """No options; the secret ``signing_secret`` (at least 32 characters) signs every request."""
    if options:
        name = sorted(options)[0]
        raise InvalidInput(f"unknown webhook option {name!r}", field=f"options.{name}")
    secret = str(secrets.get("signing_secret") or "").strip()
    if len(secret) < MIN_SECRET:
        raise InvalidInput(
            f"signing_secret must be at least {MIN_SECRET} characters"
            " (`jornada channels set webhook` generates one)",
            field="secrets.signing_secret",
        )
    return {}, {"signing_secret": secret}


def describe_webhook(options: dict[str, Any], secrets: dict[str, Any]) -> str:
    """``signed with HMAC-SHA256 (secret ****)``."""
    state = "****" if secrets.get("signing_secret") else "missing"
    return f"JSON POSTs signed with HMAC-SHA256 (secret {state})"
