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
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore import SOCKET_OPTION

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
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentDeliveryError(f"webhook: only http(s) URLs are called, not {url!r}")
    return url


class NotPublic(Exception):
    """A webhook's host resolved to an address of the server's own network."""


def public_address(host: str, port: int) -> str:
    """The address to connect to for ``host``, when every address it resolves to is public.

    A flow is written by a shop, and Jornada runs next to its database and
    other services: a host that resolves to a loopback, private, link-local or
    otherwise reserved address raises :class:`NotPublic`, so a webhook cannot be
    turned on the server's own network.
    """
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(address[0]).split("%")[0]) for *_, address in found]
    for ip in addresses:
        if not ip.is_global or ip.is_multicast:
            raise NotPublic(f"{host} is {ip}, not a public address")
    return str(addresses[0])


class _PublicOnly(httpcore.SyncBackend):
    """Connects to the address it checked: the check and the connection use one resolution,
    so a name cannot answer a public address to one and a private one to the other."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        address = public_address(host, port)
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


class _PublicTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`_PublicOnly` (TLS still checks the URL's host name)."""

    def __init__(self) -> None:
        super().__init__()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_PublicOnly(),
        )


class WebhookTransport:
    """One HTTP client (connection pool) for one workspace's outgoing webhooks."""

    def __init__(
        self, secrets: dict[str, Any], *, timeout: float = 30.0, allow_private: bool = False
    ) -> None:
        self.secret = str(secrets["signing_secret"])
        self.allow_private = allow_private
        transport = None if allow_private else _PublicTransport()
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)

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
            if not self.allow_private:  # checked by name first: through a proxy, only this check
                parts = urlsplit(url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                public_address(parts.hostname or "", port)
            response = self._client.post(url, content=body, headers=headers)
        except NotPublic as exc:
            raise PermanentDeliveryError(
                f"webhook: {exc}; the server's own network is not called "
                "(JORNADA_WEBHOOKS_ALLOW_PRIVATE=true allows it)"
            ) from exc
        except (httpx.HTTPError, httpcore.ConnectError) as exc:  # unresolved, refused, timeout…
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
