"""Outbox rows: one per effect (message, task, webhook, notification, coupon)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped


class OutboxItem(WorkspaceScoped, Base):
    """An effect to carry out. ``idempotency_key`` (run, step, execution) makes a retry a no-op.

    ``status``: pending → done | suppressed | failed. ``due_at`` lets the dispatcher
    defer (quiet hours) without losing the item.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        Index("ix_outbox_due", "status", "due_at"),
        Index("ix_outbox_run", "run_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str | None] = mapped_column(String(26))
    contact_id: Mapped[str] = mapped_column(String(26))
    step_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
