"""The Cloud API webhook's contract: the signature, what a notification says, statuses applied.

Meta signs each POST with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
raw body under the app secret>``. A notification's
``entry[].changes[].value`` carries ``messages[]`` (what contacts wrote) and
``statuses[]`` (what became of what we sent: sent, delivered, read, failed).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.held import hold
from jornada.channels.models import Message
from jornada.channels.statuses import report

#: A Cloud API status → the message status it means ("read" is our "opened").
STATUSES = {"sent": "sent", "delivered": "delivered", "read": "opened"}
#: The reply ids of an NPS question: ``nps-9`` is a score, ``nps-0-6`` a range to narrow down.
_NPS_SCORE = re.compile(r"^nps-(\d{1,2})$")
_NPS_RANGE = re.compile(r"^nps-(\d{1,2})-(\d{1,2})$")
#: Where a range reply goes next: the template asking for the exact score inside it.
NPS_FOLLOW_UP = "nps-score-{low}-{high}"


def nps_score(reply_id: str | None) -> int | None:
    """The score 0-10 a reply id ``nps-<n>`` gives, else None."""
    found = _NPS_SCORE.match(reply_id or "")
    score = int(found[1]) if found else None
    return score if score is not None and 0 <= score <= 10 else None


def nps_range(reply_id: str | None) -> tuple[int, int] | None:
    """The range ``nps-<low>-<high>`` (0 ≤ low < high ≤ 10) a first-step reply chose, else None."""
    found = _NPS_RANGE.match(reply_id or "")
    if found is None:
        return None
    low, high = int(found[1]), int(found[2])
    return (low, high) if 0 <= low < high <= 10 else None


def valid_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` + the HMAC-SHA256 of ``body`` under ``app_secret``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


@dataclass(frozen=True)
class Inbound:
    """A message a contact sent to the business number."""

    wamid: str
    phone: str  # E.164, with the +
    at: datetime
    type: str
    text: str | None  # the text; for a button or interactive reply, the title tapped
    payload: str | None  # a quick-reply button's payload, an interactive reply's id
    context_wamid: str | None  # the message of ours it answers, if it quotes one
    name: str | None  # the WhatsApp profile name
    media: dict[str, Any] | None = None  # audio, image, location…: the part's own fields (ids)


@dataclass(frozen=True)
class StatusUpdate:
    """What became of a message we sent."""

    wamid: str
    status: str  # sent | delivered | read | failed (others are ignored)
    at: datetime
    error: str | None


def _moment(value: Any, default: datetime) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return default


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _reply(message: dict[str, Any]) -> tuple[str | None, str | None]:
    """(text, payload) of an inbound message by its type."""
    kind = message.get("type")
    part = message.get(str(kind)) if isinstance(kind, str) else None
    part = part if isinstance(part, dict) else {}
    if kind == "text":
        return part.get("body"), None
    if kind == "button":  # a template's quick-reply button
        return part.get("text"), part.get("payload")
    if kind == "interactive":
        for reply in ("button_reply", "list_reply"):
            chosen = part.get(reply)
            if isinstance(chosen, dict):
                return chosen.get("title"), chosen.get("id")
    return part.get("caption"), None


def parse_notification(payload: Any, now: datetime) -> tuple[list[Inbound], list[StatusUpdate]]:
    """The inbound messages and status updates of a webhook POST's JSON (other fields ignored)."""
    inbound: list[Inbound] = []
    statuses: list[StatusUpdate] = []
    entries = _dicts(payload.get("entry")) if isinstance(payload, dict) else []
    for entry in entries:
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            names = {
                str(c.get("wa_id")): (c.get("profile") or {}).get("name")
                for c in _dicts(value.get("contacts"))
                if isinstance(c.get("profile") or {}, dict)
            }
            for message in _dicts(value.get("messages")):
                sender, wamid = str(message.get("from") or ""), str(message.get("id") or "")
                if not sender.strip("+").isdigit() or not wamid:
                    continue
                text, button = _reply(message)
                context = message.get("context")
                kind = message.get("type")
                part = message.get(kind) if isinstance(kind, str) else None
                media = None
                if kind not in ("text", "button", "interactive") and isinstance(part, dict):
                    media = {k: v for k, v in part.items() if isinstance(v, str | int | float)}
                inbound.append(
                    Inbound(
                        wamid=wamid,
                        phone="+" + sender.lstrip("+"),
                        at=_moment(message.get("timestamp"), now),
                        type=str(message.get("type") or "unknown"),
                        text=str(text) if text is not None else None,
                        payload=str(button) if button is not None else None,
                        context_wamid=str(context["id"])
                        if isinstance(context, dict) and context.get("id")
                        else None,
                        name=names.get(sender.lstrip("+")),
                        media=media or None,
                    )
                )
            for status in _dicts(value.get("statuses")):
                errors = _dicts(status.get("errors"))
                error = None
                if errors:
                    first = errors[0]
                    details = (first.get("error_data") or {}).get("details")
                    error = f"WhatsApp code {first.get('code')}: {first.get('title') or ''}"
                    error += f" ({details})" if details else ""
                if status.get("id") and status.get("status"):
                    statuses.append(
                        StatusUpdate(
                            wamid=str(status["id"]),
                            status=str(status["status"]),
                            at=_moment(status.get("timestamp"), now),
                            error=error,
                        )
                    )
    return inbound, statuses


def find_sent(session: Session, workspace_id: str, wamid: str) -> Message | None:
    """The WhatsApp message the Cloud API knows as ``wamid``."""
    return session.scalar(
        select(Message).where(
            Message.workspace_id == workspace_id,
            Message.channel == "whatsapp",
            Message.provider_message_id == wamid,
        )
    )


def take_status(
    session: Session, workspace_id: str, update: StatusUpdate, now: datetime
) -> Literal["applied", "held", "ignored"]:
    """Move the message ``update`` names forward (``failed`` keeps the API's code and title),
    or hold the status until that message's id is recorded.

    The Cloud API may report ``sent`` before the delivery pass has committed the
    wamid it answered with: such a status waits (``jornada.channels.held``). A
    status Jornada does not follow (``deleted``, ``warning``) is ignored.
    """
    status = "failed" if update.status == "failed" else STATUSES.get(update.status)
    if status is None:
        return "ignored"
    error = (update.error or "WhatsApp: failed") if status == "failed" else None
    message = find_sent(session, workspace_id, update.wamid)
    if message is not None:
        report(message, status, update.at, error)
        return "applied"
    hold(session, workspace_id, "whatsapp", update.wamid, status, update.at, error, now)
    return "held"
