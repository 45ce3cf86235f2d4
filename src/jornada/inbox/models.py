"""Conversations with contacts, and the messages stored in them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped

#: A conversation is ``open`` until someone closes it; a closed one is never reopened.
CONVERSATION_STATUSES = ("open", "closed")
#: ``inbound``: the contact wrote; ``outbound``: we did.
DIRECTIONS = ("inbound", "outbound")
#: The channels that have conversations: those a contact can write back on.
INBOX_CHANNELS = ("whatsapp", "sms")


class Conversation(WorkspaceScoped, Base):
    """A contact's thread on one channel, from the message that opened it until it is closed.

    At most one is open per contact and channel (a partial unique index).
    ``last_message_at`` and ``last_inbound_at`` are the times of the latest
    stored message and the latest the contact wrote; ``unread`` counts the
    contact's messages since someone last read the conversation.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        Index(
            "uq_conversations_open",
            "workspace_id",
            "contact_id",
            "channel",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_conversations_activity", "workspace_id", "status", "last_message_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(26))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8))  # one of CONVERSATION_STATUSES
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    unread: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ConversationMessage(WorkspaceScoped, Base):
    """One message of a conversation as stored by the inbox.

    Inbound: what the contact wrote (``text`` readable, a placeholder such as
    ``[áudio]`` for media), with the provider's id, unique per workspace and
    channel so a provider's resend is stored once; ``payload`` keeps the rest
    (a tapped button's id and title, media ids, a keyword, the message of ours
    it answers). Outbound rows name our ``messages`` row (``message_id``);
    messages a flow sends are not copied here but read from ``messages``
    (see ``jornada.inbox.queries``).
    """

    __tablename__ = "conversation_messages"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id",
            "channel",
            "provider_message_id",
            name="uq_conversation_messages_provider_message",  # the default is over 63 chars
        ),
        Index("ix_conversation_messages_conversation", "conversation_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    direction: Mapped[str] = mapped_column(String(8))  # one of DIRECTIONS
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), default=None)
    message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
