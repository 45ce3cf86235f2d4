"""Messages as sent (or, in sandbox mode, as they would have been sent)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, UTCDateTime, WorkspaceScoped


class Message(WorkspaceScoped, Base):
    """One message to one contact on one channel, with its delivery status."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_contact", "workspace_id", "contact_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    outbox_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    contact_id: Mapped[str] = mapped_column(String(26))
    run_id: Mapped[str | None] = mapped_column(String(26))
    channel: Mapped[str] = mapped_column(String(16))
    template: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    to_address: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # sent | delivered | opened | clicked | failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoredTemplate(WorkspaceScoped, Base):
    """A workspace's own version of a template; it replaces the library's one of the same id."""

    __tablename__ = "templates"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "template_id"),)

    template_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Suppression(WorkspaceScoped, Base):
    """An address no message may reach on a channel, and why (see ``policy.SUPPRESSION_REASONS``)."""

    __tablename__ = "suppressions"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "channel", "address"),)

    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
