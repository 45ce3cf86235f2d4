"""POST a flow's webhook: JSON signed with HMAC-SHA256, an idempotency key the same on every try.

Headers (the body is sent exactly as signed)::

    Content-Type: application/json
    User-Agent: Jornada/<version>
    Idempotency-Key: jornada-<workspace id>-<message id>     the same on every retry
    X-Jornada-Timestamp: <unix seconds of this try>
    X-Jornada-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

Each receiver is its own server, not one provider, so a receiver that is down
or answers 5xx is a transient failure of that message (retried with backoff,
failed after ``MAX_ATTEMPTS``), never an outage that would hold every other
webhook of the workspace.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from jornada import __version__
from jornada.channels.email.compose import Outbound
from jornada.channels.errors import PermanentDeliveryError, TransientDeliveryError

#: Answers worth another try: 408 Request Timeout, 425 Too Early, 429 Too Many Requests, 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, b"<timestamp>." + body)>``."""
    signed = f"{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def idempotency_key(message: Outbound) -> str:
    """Stable for a message: the same on every try of it, different for every other message."""
    return f"jornada-{message.workspace_id}-{message.id}"


def check_url(url: str) -> str:
    """``url`` when it is ``http(s)://host…``; else PermanentDeliveryError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PermanentDeliveryError(f"webhook: only http(s) URLs are called, not {url!r}")
    return url


class WebhookTransport:
    """One HTTP client (connection pool) for one workspace's outgoing webhooks."""

    def __init__(self, secrets: dict[str, Any], *, timeout: float = 30.0) -> None:
        self.secret = str(secrets["signing_secret"])
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, message: Outbound, now: datetime) -> str:
        """POST ``message.body`` (the JSON) to ``message.to``; the idempotency key when 2xx."""
        url = check_url(message.to)
        body = message.body.encode()
        timestamp = int(now.timestamp())
        key = idempotency_key(message)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Jornada/{__version__}",
            "Idempotency-Key": key,
            "X-Jornada-Timestamp": str(timestamp),
            "X-Jornada-Signature": signature(self.secret, timestamp, body),
        }
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:  # refused, reset, timeout, TLS, a bad URL
            raise TransientDeliveryError(
                f"webhook: cannot reach {url}: {str(exc) or type(exc).__name__}"
            ) from exc
        status = response.status_code
        if response.is_success:
            return key
        said = f"webhook: {url} answered HTTP {status} {response.text[:200]!r}"
        if status >= 500 or status in RETRY_STATUSES:
            raise TransientDeliveryError(said, status=status)
        raise PermanentDeliveryError(said, status=status)

    def close(self) -> None:
        self._client.close()
