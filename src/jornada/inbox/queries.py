"""Reading the inbox: conversations newest first, and one conversation's messages in order.

Messages a flow sends are not copied into the inbox: they are read from the
channels' ``messages`` table (the one record of what was sent) and merged by
time. A conversation shows the contact's messages on its channel *sent*
(``sent_at``) while it was open, from ``opened_at`` to ``closed_at``, and the
message of ours each inbound one answers, even when that was sent before the
conversation opened. So delivery needs no hook, a message shows its current
status (delivered, read), and a send by any path appears.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from jornada.channels.models import Message
from jornada.contacts import Contact
from jornada.contacts.queries import check_limit, decode_cursor, encode_cursor
from jornada.errors import InvalidInput
from jornada.inbox.actions import get_conversation
from jornada.inbox.models import (
    CONVERSATION_STATUSES,
    INBOX_CHANNELS,
    Conversation,
    ConversationMessage,
)

#: How much of a message the conversation list shows.
PREVIEW_CHARS = 120


def list_conversations(
    session: Session,
    workspace_id: str,
    *,
    status: str | None = "open",
    channel: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Conversations by latest stored message first (``last_message_at``, then id), with the
    contact, the unread count and the last message (a flow's included) as a preview.

    ``status`` ``open`` (default), ``closed`` or None for both; ``channel``
    ``whatsapp`` or ``sms``. Five queries per page whatever its size.
    """
    check_limit(limit)
    if status is not None and status not in CONVERSATION_STATUSES:
        raise InvalidInput(
            f"status is one of {', '.join(CONVERSATION_STATUSES)}, not {status!r}", field="status"
        )
    if channel is not None and channel not in INBOX_CHANNELS:
        raise InvalidInput(
            f"channel is one of {', '.join(INBOX_CHANNELS)}, not {channel!r}", field="channel"
        )
    query = select(Conversation).where(Conversation.workspace_id == workspace_id)
    if status is not None:
        query = query.where(Conversation.status == status)
    if channel is not None:
        query = query.where(Conversation.channel == channel)
    if cursor:
        values = decode_cursor(cursor)
        try:
            before, before_id = datetime.fromisoformat(values[0]), str(values[1])
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from exc
        query = query.where(
            or_(
                Conversation.last_message_at < before,
                and_(Conversation.last_message_at == before, Conversation.id < before_id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(
                limit + 1
            )
        )
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor([last.last_message_at.isoformat(), last.id])
    contacts = _contacts(session, workspace_id, [c.contact_id for c in page])
    previews = _last_messages(session, page)
    return [
        {
            **conversation_view(c, contacts.get(c.contact_id)),
            "last_message": previews.get(c.id),
        }
        for c in page
    ], next_cursor


def conversation_detail(
    session: Session, workspace_id: str, conversation_id: str
) -> dict[str, Any]:
    """The conversation with every message, inbound and outbound, oldest first."""
    conversation = get_conversation(session, workspace_id, conversation_id)
    contacts = _contacts(session, workspace_id, [conversation.contact_id])
    stored = list(
        session.scalars(
            select(ConversationMessage).where(
                ConversationMessage.workspace_id == workspace_id,
                ConversationMessage.conversation_id == conversation.id,
            )
        )
    )
    answered = {m.payload.get("in_reply_to") for m in stored if m.direction == "inbound"}
    kept = {m.message_id for m in stored if m.message_id is not None}
    sent = session.scalars(
        select(Message)
        .where(_sent_in([conversation], {i for i in answered if isinstance(i, int)}))
        .order_by(Message.sent_at, Message.id)
    )
    items = [_stored_view(m) for m in stored]
    items += [_sent_view(m) for m in sent if m.id not in kept]
    items.sort(key=lambda m: (m["at"], m["direction"] == "inbound", str(m["id"])))
    return {
        **conversation_view(conversation, contacts.get(conversation.contact_id)),
        "messages": items,
    }


def conversation_summary(session: Session, conversation: Conversation) -> dict[str, Any]:
    """The conversation as the list shows it, without the last message."""
    contacts = _contacts(session, conversation.workspace_id, [conversation.contact_id])
    return conversation_view(conversation, contacts.get(conversation.contact_id))


def conversation_view(conversation: Conversation, contact: Contact | None) -> dict[str, Any]:
    """The public JSON shape of a conversation (without its messages)."""
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "status": conversation.status,
        "unread": conversation.unread,
        "opened_at": conversation.opened_at,
        "last_message_at": conversation.last_message_at,
        "last_inbound_at": conversation.last_inbound_at,
        "closed_at": conversation.closed_at,
        "contact": _contact_summary(conversation.contact_id, contact),
    }


def _contact_summary(contact_id: str, contact: Contact | None) -> dict[str, Any]:
    if contact is None:
        return {"id": contact_id, "name": None, "email": None, "phone": None}
    traits = contact.traits or {}
    name = traits.get("name") or " ".join(
        str(traits[k]) for k in ("first_name", "last_name") if traits.get(k)
    )
    return {
        "id": contact.id,
        "name": str(name) if name else None,
        "email": contact.email,
        "phone": contact.phone,
    }


def _contacts(session: Session, workspace_id: str, ids: Sequence[str]) -> dict[str, Contact]:
    """The contacts ``ids`` name, keyed by those ids; a merged-away one gives its survivor."""
    wanted = set(ids)
    found: dict[str, Contact] = {}
    by_id: dict[str, str] = {i: i for i in wanted}  # asked id → id to look up now
    for _ in range(16):  # merge chains are short; the bound guards against a cycle
        if not by_id:
            break
        rows = {
            c.id: c
            for c in session.scalars(
                select(Contact).where(
                    Contact.workspace_id == workspace_id, Contact.id.in_(set(by_id.values()))
                )
            )
        }
        following: dict[str, str] = {}
        for asked, current in by_id.items():
            contact = rows.get(current)
            if contact is None:
                continue
            if contact.merged_into_id is None:
                found[asked] = contact
            else:
                following[asked] = contact.merged_into_id
        by_id = following
    return found


def _sent_in(
    conversations: Sequence[Conversation], answered: set[int] | None = None
) -> ColumnElement[bool]:
    """Messages of ours that belong in ``conversations``: to the contact on the channel, sent
    while the conversation was open; or one an inbound message answers."""
    windows = [
        and_(
            Message.workspace_id == c.workspace_id,
            Message.contact_id == c.contact_id,
            Message.channel == c.channel,
            Message.sent_at >= c.opened_at,
            Message.sent_at <= c.closed_at
            if c.closed_at is not None
            else Message.sent_at.is_not(None),
        )
        for c in conversations
    ]
    if answered and conversations:
        windows.append(
            and_(Message.workspace_id == conversations[0].workspace_id, Message.id.in_(answered))
        )
    return or_(*windows) if windows else false()


def _last_messages(
    session: Session, conversations: Sequence[Conversation]
) -> dict[str, dict[str, Any]]:
    """The newest message of each conversation, stored or sent by a flow (three queries)."""
    if not conversations:
        return {}
    ids = [c.id for c in conversations]
    ranked = (
        select(
            ConversationMessage,
            func.row_number()
            .over(
                partition_by=ConversationMessage.conversation_id,
                order_by=(ConversationMessage.at.desc(), ConversationMessage.id.desc()),
            )
            .label("rank"),
        )
        .where(
            ConversationMessage.workspace_id == conversations[0].workspace_id,
            ConversationMessage.conversation_id.in_(ids),
        )
        .subquery()
    )
    latest: dict[str, dict[str, Any]] = {}
    for row in session.execute(select(ranked).where(ranked.c.rank == 1)).mappings():
        latest[row["conversation_id"]] = {
            "direction": row["direction"],
            "text": _preview(row["text"]),
            "at": row["at"],
        }
    # a flow's messages: which is the newest in each window (ids only), then their text
    windows: dict[tuple[str, str], list[Conversation]] = {}
    for conversation in conversations:
        windows.setdefault((conversation.contact_id, conversation.channel), []).append(conversation)
    newest: dict[str, tuple[datetime, int]] = {}
    sent = session.execute(
        select(Message.contact_id, Message.channel, Message.sent_at, Message.id).where(
            _sent_in(conversations)
        )
    )
    for contact_id, channel, sent_at, message_id in sent:
        if sent_at is None:  # _sent_in asks for sent ones only
            continue
        for conversation in windows.get((contact_id, channel), []):
            if sent_at < conversation.opened_at or (
                conversation.closed_at is not None and sent_at > conversation.closed_at
            ):
                continue
            shown = latest.get(conversation.id)
            best = newest.get(conversation.id)
            if (shown is None or shown["at"] < sent_at) and (
                best is None or best < (sent_at, message_id)
            ):
                newest[conversation.id] = (sent_at, message_id)
    if newest:
        wanted = [m for _, m in newest.values()]
        rows = session.execute(select(Message.id, Message.body).where(Message.id.in_(wanted)))
        bodies: dict[int, str] = {row.id: row.body for row in rows}
        for conversation_id, (sent_at, message_id) in newest.items():
            latest[conversation_id] = {
                "direction": "outbound",
                "text": _preview(bodies.get(message_id, "")),
                "at": sent_at,
            }
    return latest


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _stored_view(message: ConversationMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "direction": message.direction,
        "channel": message.channel,
        "text": message.text,
        "payload": message.payload,
        "provider_message_id": message.provider_message_id,
        "message_id": message.message_id,
        "status": None,
        "at": message.at,
    }


def _sent_view(message: Message) -> dict[str, Any]:
    return {
        "id": f"message:{message.id}",
        "direction": "outbound",
        "channel": message.channel,
        "text": message.body,
        "payload": {"template": message.template, "run_id": message.run_id},
        "provider_message_id": message.provider_message_id,
        "message_id": message.id,
        "status": message.status,
        "at": message.sent_at or message.created_at,  # _sent_in asks for sent ones only
    }
