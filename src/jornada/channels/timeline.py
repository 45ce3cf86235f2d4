"""A contact's messages as the gate and delivery decided them, newest first: sent or why not."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.models import Message
from jornada.contacts.queries import check_limit, decode_cursor, encode_cursor, get_contact
from jornada.errors import InvalidInput
from jornada.outbox import OutboxItem


def contact_messages(
    session: Session,
    workspace_id: str,
    contact_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Every message a flow meant to send the contact, with what became of it.

    ``status``: ``pending`` (not yet due), ``deferred`` (the gate put it off
    until ``until``: quiet hours), ``suppressed`` (the gate refused: consent,
    suppression list, caps…), ``failed`` (a broken template) or, once handed
    to the channel, the message's own status (``queued`` … ``replied``,
    ``failed``, ``bounced``). ``reason``: why it was not sent (or not yet: a
    provider's daily cap, a retry), null when it was.
    """
    check_limit(limit)
    contact = get_contact(session, workspace_id, contact_id)
    query = (
        select(OutboxItem, Message)
        .outerjoin(Message, Message.outbox_id == OutboxItem.id)
        .where(
            OutboxItem.workspace_id == workspace_id,
            OutboxItem.contact_id == contact.id,
            OutboxItem.kind == "send",
        )
    )
    if cursor:
        try:
            before = int(decode_cursor(cursor)[0])
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from exc
        query = query.where(OutboxItem.id < before)
    rows = session.execute(query.order_by(OutboxItem.id.desc()).limit(limit + 1)).all()
    next_cursor = encode_cursor([rows[limit - 1][0].id]) if len(rows) > limit else None
    return [_view(item, message) for item, message in rows[:limit]], next_cursor


def _view(item: OutboxItem, message: Message | None) -> dict[str, Any]:
    until: datetime | None = None
    if message is not None:
        status, reason = message.status, message.error
        at = message.sent_at or message.created_at
        if status == "queued":
            until = message.next_attempt_at
        elif status not in ("failed", "bounced"):
            reason = None  # a retry's error that a later send made moot
    elif item.status == "pending":
        status = "deferred" if item.reason else "pending"
        reason, at, until = item.reason, item.created_at, item.due_at
    else:
        status, reason, at = item.status, item.reason, item.processed_at or item.created_at
    payload = item.payload
    return {
        "outbox_id": item.id,
        "message_id": message.id if message is not None else None,
        "run_id": item.run_id,
        "flow": payload.get("flow"),
        "step": item.step_id,
        "channel": item.channel,
        "template": payload.get("template"),
        "purpose": payload.get("purpose", "marketing"),
        "status": status,
        "reason": reason,
        "at": at,
        "until": until,
    }
