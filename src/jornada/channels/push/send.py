"""Send Web Push messages with pywebpush: VAPID-signed (RFC 8292), aes128gcm-encrypted (RFC 8291).

A push message goes to every subscription of its contact (the message's
address is the contact id). The transport reads those subscriptions itself in
a short read transaction (delivery sends with no transaction open) and
deletes the ones the push service says are gone (404/410, RFC 8030 §7.3) in a
short write transaction of its own: the subscriptions are the push channel's
recipients, so they are read where the message is sent, not copied into it.

| push service answers | outcome |
| --- | --- |
| 2xx for at least one subscription | ``sent`` (a retry would push twice to that browser) |
| 404 / 410 | that subscription is deleted; none left: ``failed`` |
| 429 | transient: retried with backoff |
| 5xx, connection refused, timeout | provider unavailable: queued, an integration incident |
| other 4xx (a bad key, a payload too large) | noted on the subscription; none took it: ``failed`` |
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import requests
from py_vapid import Vapid  # type: ignore[import-untyped]
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

from jornada.channels.email.compose import Outbound
from jornada.channels.errors import (
    PermanentDeliveryError,
    ProviderUnavailable,
    TransientDeliveryError,
)
from jornada.channels.push.subscriptions import (
    Subscription,
    note_error,
    subscriptions_of,
    unsubscribe,
)
from jornada.db import Database

#: Seconds a push service keeps a message for a browser that is offline (RFC 8030 §5.2).
TTL = 24 * 60 * 60
_URL_LINE = re.compile(r"^https?://\S+$")
GONE = frozenset({404, 410})  # RFC 8030 §7.3 / push services: the subscription no longer exists


def notification(message: Outbound, options: dict[str, Any]) -> dict[str, Any]:
    """The JSON payload the service worker shows: ``{title, body, url}`` (and ``icon``).

    ``title`` is the template's subject, else the provider's ``title``; a line
    of the body that is only an http(s) URL is the page a click opens (and is
    left out of the text), else the provider's ``url``.
    """
    url: str | None = None
    lines = []
    for line in message.body.strip().splitlines():
        if url is None and _URL_LINE.match(line.strip()):
            url = line.strip()
        else:
            lines.append(line)
    payload: dict[str, Any] = {
        "title": message.subject or str(options.get("title") or ""),
        "body": "\n".join(lines).strip(),
        "url": url or options.get("url"),
    }
    if options.get("icon"):
        payload["icon"] = options["icon"]
    return payload


class WebPushTransport:
    """One HTTP session for one workspace's pushes, signed with its VAPID key."""

    def __init__(
        self,
        options: dict[str, Any],
        secrets: dict[str, Any],
        *,
        database: Database,
        timeout: float = 30.0,
    ) -> None:
        self.options, self.database, self.timeout = options, database, timeout
        self.subject = str(options["subject"])
        self._vapid = Vapid.from_raw(str(secrets["private_key"]).encode())
        self._http = requests.Session()

    def _push(self, subscription: Subscription, data: str) -> str | int:
        """The push message's URL (``Location``) when accepted; else the status answered (0: none)."""
        try:
            response = webpush(
                subscription.info(),
                data,
                vapid_private_key=self._vapid,
                vapid_claims={"sub": self.subject},  # pywebpush adds aud and exp to this dict
                ttl=TTL,
                timeout=self.timeout,
                requests_session=self._http,
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is None:
                raise PermanentDeliveryError(f"push: {exc.message}") from exc
            return int(status)
        except requests.RequestException:  # connection refused or reset, timeout, TLS
            return 0
        return str(response.headers.get("Location") or subscription.endpoint)

    def send(self, message: Outbound, now: datetime) -> str:
        """Push ``message`` to each of its contact's browsers; the first accepted one's URL."""
        with self.database.read() as session:
            subscriptions = subscriptions_of(session, message.workspace_id, message.contact_id)
        if not subscriptions:
            raise PermanentDeliveryError(
                "push: the contact has no push subscription (never subscribed, or every"
                " browser's subscription expired)"
            )
        data = json.dumps(notification(message, self.options), ensure_ascii=False)
        accepted: list[str] = []
        answers: dict[str, int] = {}
        for subscription in subscriptions:
            result = self._push(subscription, data)
            if isinstance(result, str):
                accepted.append(result)
            else:
                answers[subscription.endpoint] = result
        gone = [e for e, status in answers.items() if status in GONE]
        refused = {e: f"HTTP {s}" for e, s in answers.items() if s not in GONE and s}
        if gone or refused:
            with self.database.write() as session:
                unsubscribe(session, message.workspace_id, gone)
                note_error(session, message.workspace_id, refused)
        if accepted:
            return accepted[0]
        statuses = sorted(set(answers.values()))
        said = ", ".join("no connection" if s == 0 else f"HTTP {s}" for s in statuses)
        if any(s == 0 or s >= 500 for s in statuses):
            raise ProviderUnavailable(f"push service: {said}")
        if 429 in statuses:
            raise TransientDeliveryError(f"push service: {said}")
        if len(gone) == len(subscriptions):
            raise PermanentDeliveryError(
                f"push: the push service answered 404/410 for the contact's {len(gone)}"
                " subscription(s); they were removed and none is left"
            )
        raise PermanentDeliveryError(f"push service refused every subscription: {said}")

    def close(self) -> None:
        self._http.close()
