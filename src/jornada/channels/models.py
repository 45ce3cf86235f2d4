"""Messages as sent (or, in sandbox mode, as they would have been sent), providers, incidents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped

#: A message's statuses: ``queued`` (waiting for its provider) → ``sending`` (claimed by a
#: worker, ``next_attempt_at`` is the lease) → ``sent`` → ``delivered`` → ``opened`` →
#: ``clicked`` → ``replied``; or ``failed`` (never went) / ``bounced`` (the address rejected it).
MESSAGE_STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "failed",
    "bounced",
)


class Message(WorkspaceScoped, Base):
    """One message to one contact on one channel, with its delivery status and when each was reached.

    ``status`` is the furthest status reached; each ``<status>_at`` keeps the first
    time it was reached, so an open after a click does not move the status back.
    ``attempts`` counts tries with the provider, ``next_attempt_at`` is when a queued
    message may be tried (or when a worker's claim on it lapses), ``error`` the last
    provider answer for a retry, a failure or a bounce.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_contact", "workspace_id", "contact_id"),
        Index("ix_messages_due", "status", "next_attempt_at"),
        # a provider's daily cap counts the group's messages sent since the day began
        Index("ix_messages_sent", "workspace_id", "channel", "sent_at"),
    )

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
    status: Mapped[str] = mapped_column(String(16))  # one of MESSAGE_STATUSES
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # e-mail: the text alternative; WhatsApp: buttons, list, audio or products as JSON
    text_body: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


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


class ChannelProvider(WorkspaceScoped, Base):
    """How a workspace sends on a channel: the provider, its options and its encrypted secrets.

    ``options`` holds what may be shown (host, port, sender, base URL…);
    ``secrets`` is a Fernet token of a JSON object (passwords, tokens, keys),
    never stored or shown in clear. No row: the channel runs in the sandbox.
    """

    __tablename__ = "channel_providers"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "channel"),)

    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str | None] = mapped_column(String(500))
    options: Mapped[dict[str, Any]] = mapped_column(Json)
    secrets: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IntegrationIncident(WorkspaceScoped, Base):
    """A provider unreachable for a workspace: opened on the first failure, closed on recovery."""

    __tablename__ = "integration_incidents"
    __table_args__ = (
        Index("ix_integration_incidents_open", "workspace_id", "channel", "closed_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(String(500))


class HeldStatus(WorkspaceScoped, Base):
    """A provider's status for a message id not recorded yet, kept until the send is.

    A provider may call back before the delivery pass has written the id it
    answered with; the status waits here and is applied when the id is recorded
    (``jornada.channels.held``), or is forgotten after ``HOLD`` (a message that
    was not sent by Jornada).
    """

    __tablename__ = "held_statuses"
    __table_args__ = (
        Index("ix_held_statuses_message", "workspace_id", "channel", "provider_message_id"),
        Index("ix_held_statuses_held_at", "held_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    provider_message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # ours: sent, delivered, opened or failed
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(500))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendingSettingsRow(WorkspaceScoped, Base):
    """A workspace's own settings of the sending gate; no row: ``policy.DEFAULT_SENDING``.

    ``quiet_start``/``quiet_end``: the quiet period (``HH:MM``, the contact's time);
    ``caps``: ``{channel: {"day": n, "week": n}}`` for every channel capped;
    ``smart_window_seconds``: the smart-sending window.
    """

    __tablename__ = "sending_settings"
    __table_args__ = (PrimaryKeyConstraint("workspace_id"),)

    quiet_start: Mapped[str] = mapped_column(String(5))
    quiet_end: Mapped[str] = mapped_column(String(5))
    caps: Mapped[dict[str, Any]] = mapped_column(Json)
    smart_window_seconds: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
