"""The inbox's write path: a contact's message stored in its conversation; read; close."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jornada.contacts import get_contact
from jornada.errors import InvalidInput, NotFound
from jornada.ids import new_id
from jornada.inbox.models import INBOX_CHANNELS, Conversation, ConversationMessage

#: What an inbound message without text shows as, by its kind (WhatsApp's ``type``, or ``mms``).
PLACEHOLDERS = {
    "audio": "[áudio]",
    "voice": "[áudio]",
    "image": "[imagem]",
    "video": "[vídeo]",
    "document": "[documento]",
    "sticker": "[figurinha]",
    "location": "[localização]",
    "contacts": "[contato]",
    "reaction": "[reação]",
    "order": "[pedido]",
    "mms": "[mídia]",
}


def readable(kind: str, text: str | None) -> str:
    """The text an agent sees: the message's own, a media placeholder before its caption, or
    ``[<kind>]`` for a kind Jornada does not know."""
    said = (text or "").strip()
    if kind in ("text", "button", "interactive") and said:
        return said
    placeholder = PLACEHOLDERS.get(kind, f"[{kind}]")
    return f"{placeholder} {said}" if said else placeholder


def record_inbound(
    session: Session,
    workspace_id: str,
    contact_id: str,
    channel: str,
    text: str,
    payload: dict[str, Any],
    provider_message_id: str,
    at: datetime,
) -> ConversationMessage:
    """Store what the contact wrote in its open conversation on ``channel`` (opened if none).

    Idempotent on ``provider_message_id``: a provider's resend returns the
    message stored the first time and changes nothing. A closed conversation
    is never reopened: the contact writing again opens a new one, so what was
    closed keeps its history. ``contact_id`` may be a merged-away contact: the
    survivor is used. Raises ``NotFound`` for an unknown contact and
    ``InvalidInput`` for a channel without conversations.
    """
    if channel not in INBOX_CHANNELS:
        raise InvalidInput(
            f"conversations are on {', '.join(INBOX_CHANNELS)}, not {channel!r}", field="channel"
        )
    known = _stored(session, workspace_id, channel, provider_message_id)
    if known is not None:
        return known
    contact = get_contact(session, workspace_id, contact_id)
    conversation = _open_conversation(session, workspace_id, contact.id, channel, at)
    message = ConversationMessage(
        id=new_id(),
        workspace_id=workspace_id,
        conversation_id=conversation.id,
        direction="inbound",
        channel=channel,
        text=text,
        payload=payload,
        provider_message_id=provider_message_id,
        at=at,
    )
    try:
        with session.begin_nested():  # another process may store the same resend right now
            session.add(message)
    except IntegrityError:
        stored = _stored(session, workspace_id, channel, provider_message_id)
        if stored is None:
            raise
        return stored
    conversation.unread += 1
    conversation.last_message_at = max(conversation.last_message_at, at)
    last = conversation.last_inbound_at
    conversation.last_inbound_at = at if last is None else max(last, at)
    return message


def _stored(
    session: Session, workspace_id: str, channel: str, provider_message_id: str
) -> ConversationMessage | None:
    return session.scalar(
        select(ConversationMessage).where(
            ConversationMessage.workspace_id == workspace_id,
            ConversationMessage.channel == channel,
            ConversationMessage.provider_message_id == provider_message_id,
        )
    )


def _find_open(
    session: Session, workspace_id: str, contact_id: str, channel: str
) -> Conversation | None:
    return session.scalar(
        select(Conversation).where(
            Conversation.workspace_id == workspace_id,
            Conversation.contact_id == contact_id,
            Conversation.channel == channel,
            Conversation.status == "open",
        )
    )


def _open_conversation(
    session: Session, workspace_id: str, contact_id: str, channel: str, at: datetime
) -> Conversation:
    """The contact's open conversation on ``channel``, opened at ``at`` when there is none."""
    found = _find_open(session, workspace_id, contact_id, channel)
    if found is not None:
        return found
    conversation = Conversation(
        id=new_id(),
        workspace_id=workspace_id,
        contact_id=contact_id,
        channel=channel,
        status="open",
        opened_at=at,
        last_message_at=at,
        last_inbound_at=None,
        unread=0,
    )
    try:
        with session.begin_nested():  # one open per contact and channel (uq_conversations_open)
            session.add(conversation)
    except IntegrityError:
        found = _find_open(session, workspace_id, contact_id, channel)
        if found is None:
            raise
        return found
    return conversation


def get_conversation(session: Session, workspace_id: str, conversation_id: str) -> Conversation:
    """The workspace's conversation ``conversation_id``; ``NotFound`` for any other."""
    conversation = session.scalar(
        select(Conversation).where(
            Conversation.workspace_id == workspace_id, Conversation.id == conversation_id
        )
    )
    if conversation is None:
        raise NotFound(f"no conversation with id {conversation_id!r} in this workspace", field="id")
    return conversation


def mark_read(session: Session, workspace_id: str, conversation_id: str) -> Conversation:
    """Someone read the conversation: nothing is unread."""
    conversation = get_conversation(session, workspace_id, conversation_id)
    conversation.unread = 0
    return conversation


def close_conversation(
    session: Session, workspace_id: str, conversation_id: str, now: datetime
) -> Conversation:
    """Close the conversation (closing a closed one changes nothing); the contact's next
    message opens a new one."""
    conversation = get_conversation(session, workspace_id, conversation_id)
    if conversation.status != "closed":
        conversation.status = "closed"
        conversation.closed_at = now
    return conversation
