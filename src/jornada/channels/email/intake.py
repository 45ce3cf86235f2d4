"""Bounces and complaints into the suppression list and the messages' statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jornada.channels.email.reports import parse_report
from jornada.channels.history import suppress
from jornada.channels.models import Message


def take_report(session: Session, workspace_id: str, raw: bytes, now: datetime) -> dict[str, Any]:
    """Apply a DSN or ARF report to the workspace; returns what it changed.

    A permanent failure (Status 5.x.x) lists the address as ``hard_bounce`` and
    marks the returned message ``bounced``; a complaint lists it as
    ``complaint``. Delays (4.x.x) and successes change nothing. A returned
    message of another workspace is ignored (its address is still listed here,
    since this workspace received the report).
    """
    report = parse_report(raw)
    message = None
    if report.message is not None and report.message[1] == workspace_id:
        message = session.get(Message, report.message[0])
        if message is not None and message.workspace_id != workspace_id:
            message = None
    suppressed: list[dict[str, str]] = []
    for recipient in report.recipients:
        reason = "complaint" if report.kind == "complaint" else "hard_bounce"
        if report.kind == "bounce" and not recipient.hard_bounce:
            continue
        if not recipient.address:
            continue
        suppress(session, workspace_id, "email", recipient.address, reason, now)
        suppressed.append({"address": recipient.address.lower(), "reason": reason})
        if message is not None and report.kind == "bounce":
            if message.bounced_at is None:
                message.bounced_at = now
            message.status = "bounced"
            message.error = f"{recipient.status} {recipient.diagnostic}".strip()[:500]
    return {
        "kind": report.kind,
        "message_id": message.id if message is not None else None,
        "suppressed": suppressed,
        "ignored": len(report.recipients) - len(suppressed),
    }
