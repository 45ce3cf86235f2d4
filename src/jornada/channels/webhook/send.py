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
import ipaddress
import socket
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


def check_url(url: str, *, allow_private: bool = False) -> str:
    """``url`` when it is ``http(s)://host…`` on a public address; else PermanentDeliveryError.

    A flow is written by a shop, and Jornada runs next to its database and
    other services: without ``allow_private``, a host that resolves to a
    loopback, private, link-local or otherwise reserved address is refused, so
    a webhook cannot be turned on the server's own network. (A name that
    resolves differently between this check and the call is not caught.)
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentDeliveryError(f"webhook: only http(s) URLs are called, not {url!r}")
    if allow_private:
        return url
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise TransientDeliveryError(f"webhook: cannot resolve {parts.hostname!r}: {exc}") from exc
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not ip.is_global or ip.is_multicast:
            raise PermanentDeliveryError(
                f"webhook: {parts.hostname} is {ip}, not a public address; the server's own "
                "network is not called (JORNADA_WEBHOOKS_ALLOW_PRIVATE=true allows it)"
            )
    return url


class WebhookTransport:
    """One HTTP client (connection pool) for one workspace's outgoing webhooks."""

    def __init__(
        self, secrets: dict[str, Any], *, timeout: float = 30.0, allow_private: bool = False
    ) -> None:
        self.secret = str(secrets["signing_secret"])
        self.allow_private = allow_private
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, message: Outbound, now: datetime) -> str:
        """POST ``message.body`` (the JSON) to ``message.to``; the idempotency key when 2xx."""
        url = check_url(message.to, allow_private=self.allow_private)
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
