"""Browsers' push subscriptions: where a contact's Web Push messages go."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, UTCDateTime, WorkspaceScoped


class PushSubscription(WorkspaceScoped, Base):
    """One browser's ``PushSubscription`` for a contact (one endpoint per workspace).

    ``p256dh`` and ``auth`` (base64url) are the browser's keys that encrypt the
    payload (RFC 8291); ``last_error`` is the push service's last refusal that
    did not end the subscription (a 404/410 deletes the row).
    """

    __tablename__ = "push_subscriptions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "endpoint"),
        Index("ix_push_subscriptions_contact", "workspace_id", "contact_id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    contact_id: Mapped[str] = mapped_column(String(26))
    endpoint: Mapped[str] = mapped_column(String(1000))
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
