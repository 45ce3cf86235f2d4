"""The server's secret: encrypts provider secrets at rest (Fernet) and signs links (HMAC).

The secret is ``JORNADA_SECRET_KEY``; when it is unset, one is generated once
into ``secret.key`` (mode 0600) beside the SQLite database (``var/`` for
PostgreSQL), so a restart reads the same one. Two keys are derived from it, one
per use, so a signed link never reveals anything about the encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as random_secrets
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import make_url

from jornada.config import Settings
from jornada.errors import InvalidInput

KEY_FILE = "secret.key"


def key_file(database_url: str) -> Path:
    """Where a generated secret is kept: beside the SQLite file, else ``var/``."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / KEY_FILE
    return Path("var") / KEY_FILE


def _read_or_create(path: Path) -> str:
    """The secret in ``path``, created atomically (mode 0600) by the first process that needs it."""
    if path.exists():
        return path.read_text("ascii").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(random_secrets.token_urlsafe(32) + "\n")
    try:
        os.link(draft, path)  # fails if another process won the race: use theirs
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text("ascii").strip()


def _derive(secret: str, purpose: str) -> bytes:
    return hashlib.sha256(f"jornada:{purpose}:{secret}".encode()).digest()


class Keyring:
    """Encryption and signing keys derived from one secret.

    ``secret`` may be a function that finds it (reads or creates the key file):
    it is called on first use, so a server that never needs a key creates no file.
    """

    def __init__(self, secret: str | Callable[[], str]) -> None:
        self._source = secret
        self._keys: tuple[Fernet, bytes] | None = None
        self._lock = threading.Lock()
        if isinstance(secret, str):
            self._derive()

    def __reduce__(self) -> tuple[type[Keyring], tuple[str]]:
        """A keyring goes to a child process (the e-mail senders) as its secret."""
        return (Keyring, (self._secret(),))

    def _secret(self) -> str:
        with self._lock:
            if not isinstance(self._source, str):
                self._source = self._source()  # read once: the file may not be read again
            return self._source

    def _derive(self) -> tuple[Fernet, bytes]:
        secret = self._secret()
        with self._lock:
            if self._keys is None:
                if len(secret) < 16:
                    raise InvalidInput(
                        "JORNADA_SECRET_KEY must be at least 16 characters",
                        field="JORNADA_SECRET_KEY",
                    )
                fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, "fernet")))
                self._keys = (fernet, _derive(secret, "links"))
            return self._keys

    @property
    def _fernet(self) -> Fernet:
        return (self._keys or self._derive())[0]

    @property
    def _signing(self) -> bytes:
        return (self._keys or self._derive())[1]

    def encrypt(self, values: dict[str, Any]) -> str:
        """A Fernet token of ``values`` as JSON (authenticated, with a timestamp)."""
        return self._fernet.encrypt(orjson.dumps(values)).decode("ascii")

    def decrypt(self, token: str) -> dict[str, Any]:
        """The values of :meth:`encrypt`; a different secret than the one that wrote them is an error."""
        try:
            values = orjson.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken as exc:
            raise InvalidInput(
                "stored provider secrets cannot be decrypted: JORNADA_SECRET_KEY (or secret.key) "
                "is not the one they were saved with; set the provider again",
                field="JORNADA_SECRET_KEY",
            ) from exc
        assert isinstance(values, dict)
        return values

    def sign(self, data: bytes) -> bytes:
        """HMAC-SHA256 of ``data`` under the links key."""
        return hmac.digest(self._signing, data, "sha256")

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is :meth:`sign` of ``data``, or its first bytes (at least 12)."""
        return len(signature) >= 12 and hmac.compare_digest(
            self.sign(data)[: len(signature)], signature
        )


_CACHE: dict[tuple[str | None, str], Keyring] = {}
_CACHE_LOCK = threading.Lock()


def load_keyring(secret: str | None, database_url: str) -> Keyring:
    """The keyring for ``secret``, or for the generated one kept beside ``database_url``."""
    where = str(key_file(database_url).resolve()) if secret is None else ""
    with _CACHE_LOCK:
        found = _CACHE.get((secret, where))
        if found is None:
            found = Keyring(secret if secret is not None else partial(_read_or_create, Path(where)))
            _CACHE[(secret, where)] = found
        return found


def keyring_for(settings: Settings, database_url: str | None = None) -> Keyring:
    """The keyring of these settings (``database_url`` overrides the settings' one)."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key is not None else None
    return load_keyring(secret, database_url or settings.database_url)
