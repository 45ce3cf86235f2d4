"""Statuses that arrive before their message's provider id is recorded: held, then applied.

A provider answers the send with its id and may call the status webhook at
once, before the delivery pass has committed that id. Such a status is held
(``held_statuses``) and applied when the id is recorded, in the same
transaction; one still unmatched after :data:`HOLD` was for a message Jornada
did not send (another app on the same number) and is forgotten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jornada.channels.models import HeldStatus, Message
from jornada.channels.statuses import report

HOLD = timedelta(days=1)
_CHUNK = 500


def hold(
    session: Session,
    workspace_id: str,
    channel: str,
    provider_message_id: str,
    status: str,
    at: datetime,
    error: str | None,
    now: datetime,
) -> None:
    """Keep a status (ours: sent, delivered, opened, failed) for an id not recorded yet."""
    session.add(
        HeldStatus(
            workspace_id=workspace_id,
            channel=channel,
            provider_message_id=provider_message_id[:255],
            status=status,
            at=at,
            error=error[:500] if error else None,
            held_at=now,
        )
    )


def release(
    session: Session, workspace_id: str, channel: str, provider_message_ids: Sequence[str]
) -> int:
    """Apply the held statuses of these ids, just recorded, in the order they happened."""
    ids = sorted(set(provider_message_ids))
    held: list[HeldStatus] = []
    for start in range(0, len(ids), _CHUNK):
        held += session.scalars(
            select(HeldStatus).where(
                HeldStatus.workspace_id == workspace_id,
                HeldStatus.channel == channel,
                HeldStatus.provider_message_id.in_(ids[start : start + _CHUNK]),
            )
        )
    if not held:
        return 0
    messages = {
        m.provider_message_id: m
        for m in session.scalars(
            select(Message)
            .where(
                Message.workspace_id == workspace_id,
                Message.channel == channel,
                Message.provider_message_id.in_(sorted({h.provider_message_id for h in held})),
            )
            .execution_options(populate_existing=True)
        )
    }
    for status in sorted(held, key=lambda h: (h.at, h.id)):
        message = messages.get(status.provider_message_id)
        if message is not None:
            report(message, status.status, status.at, status.error)
        session.delete(status)
    return len(held)


def forget_stale(session: Session, now: datetime) -> int:
    """Drop held statuses older than :data:`HOLD`; how many."""
    result = session.execute(delete(HeldStatus).where(HeldStatus.held_at < now - HOLD))
    return int(getattr(result, "rowcount", 0) or 0)
