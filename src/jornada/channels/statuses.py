"""Move a message along its statuses: each status keeps the first time it was reached."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jornada.channels.models import Message

#: The order statuses move in; ``failed`` and ``bounced`` are outside it and final.
PROGRESS = ("queued", "sending", "sent", "delivered", "opened", "clicked", "replied")
#: A later status implies the earlier ones it needs (a click means the message was opened).
IMPLIES = {"clicked": ("opened",), "replied": ("opened",)}


def advance(message: Message, status: str, now: datetime) -> None:
    """Record that ``message`` reached ``status`` now.

    Its ``<status>_at`` is set the first time only; ``status`` moves forward only
    (an open after a click leaves it ``clicked``) and never leaves ``failed`` or
    ``bounced``, though their times are still kept.
    """
    for reached in (*IMPLIES.get(status, ()), status):
        column = f"{reached}_at"
        if getattr(message, column) is None:
            setattr(message, column, now)
        if message.status in PROGRESS and PROGRESS.index(reached) > PROGRESS.index(message.status):
            message.status = reached


def advance_by_id(session: Session, message_id: int, status: str, now: datetime) -> Message | None:
    """:func:`advance` on the message with this id, if it exists."""
    message = session.get(Message, message_id)
    if message is not None:
        advance(message, status, now)
    return message


def report(message: Message, status: str, at: datetime, error: str | None = None) -> None:
    """A provider's report, in our terms: ``failed`` keeps its error, the rest advance."""
    if status == "failed":
        if message.failed_at is None:
            message.failed_at = at
        if message.status not in ("failed", "bounced"):
            message.status = "failed"
        message.error = (error or f"{message.channel}: failed")[:500]
    else:
        advance(message, status, at)
