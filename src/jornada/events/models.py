"""The append-only event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
_EventId = BigInteger().with_variant(Integer(), "sqlite")


class Event(WorkspaceScoped, Base):
    """One accepted Segment call (track, identify, page, screen, group, alias).

    ``message_id`` is unique per workspace: a resend is acknowledged and stored once.
    ``timestamp`` is when it happened (clock-skew corrected), ``received_at`` when we got it.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_id"),
        # with event: a contact's events of some names, from the index alone (segments)
        Index("ix_events_contact_time", "workspace_id", "contact_id", "timestamp", "event"),
        # with contact_id: event conditions group a name's events by contact from the index
        Index("ix_events_name_time", "workspace_id", "event", "timestamp", "contact_id"),
    )

    id: Mapped[int] = mapped_column(_EventId, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[str] = mapped_column(String(26))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    properties: Mapped[dict[str, Any]] = mapped_column(Json)
    context: Mapped[dict[str, Any] | None] = mapped_column(Json, default=None)


#: The columns the ingestion hot path writes with ``db.bulk`` (in this order).
EVENT_COLUMNS = (
    "workspace_id",
    "message_id",
    "contact_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "timestamp",
    "received_at",
    "properties",
    "context",
)
