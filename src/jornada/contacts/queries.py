"""Read helpers for contact profiles; every query is scoped to one workspace."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from jornada.contacts.models import Contact
from jornada.contacts.normalize import InvalidValue, normalize_email, normalize_phone
from jornada.contacts.state import cents_str
from jornada.errors import InvalidInput, NotFound
from jornada.events.models import Event

MAX_LIMIT = 500


@dataclass(frozen=True)
class ContactFilter:
    email: str | None = None
    phone: str | None = None
    user_id: str | None = None


def encode_cursor(values: list[Any]) -> str:
    """An opaque page cursor holding the sort key of the last row returned."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not one this API returned", field="cursor") from exc
    if not isinstance(values, list):
        raise InvalidInput("cursor is not one this API returned", field="cursor")
    return values


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")


def contact_view(contact: Contact) -> dict[str, Any]:
    """The public JSON shape of a contact (money as decimal strings)."""
    aov = (
        cents_str(contact.total_spent_cents // contact.orders_count)
        if contact.orders_count
        else None
    )
    return {
        "id": contact.id,
        "user_id": contact.user_id,
        "email": contact.email,
        "phone": contact.phone,
        "traits": contact.traits,
        "first_seen_at": contact.first_seen_at,
        "last_seen_at": contact.last_seen_at,
        "locale": contact.locale,
        "timezone": contact.timezone,
        "timezone_source": contact.timezone_source,
        "tags": contact.tags,
        "stage": contact.stage,
        "owner": contact.owner,
        "consent": contact.consent,
        "commerce": {
            "currency": contact.currency,
            "orders_count": contact.orders_count,
            "total_spent": cents_str(contact.total_spent_cents),
            "average_order_value": aov,
            "first_order_at": contact.first_order_at,
            "last_order_at": contact.last_order_at,
            "last_product_viewed": contact.last_product_viewed,
            "open_cart": contact.open_cart,
            "open_boletos": contact.open_boletos,
        },
        "web_session": _session_view(contact.web_session),
        "last_engaged_at": contact.last_engaged_at,
    }


def _session_view(session: dict[str, Any] | None) -> dict[str, Any] | None:
    """The current web session with its duration; product views are ``counts["Product Viewed"]``."""
    if session is None:
        return None
    started = datetime.fromisoformat(session["started_at"])
    last = datetime.fromisoformat(session["last_at"])
    return {**session, "duration_seconds": int((last - started).total_seconds())}


def get_contact(session: Session, workspace_id: str, contact_id: str) -> Contact:
    """A contact by id; an id of a contact merged into another resolves to the survivor."""
    for _ in range(16):  # merge chains are short; the bound guards against a cycle
        contact = session.scalar(
            select(Contact).where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
        )
        if contact is None:
            break
        if contact.merged_into_id is None:
            return contact
        contact_id = contact.merged_into_id
    raise NotFound(f"no contact with id {contact_id!r} in this workspace", field="id")


def list_contacts(
    session: Session,
    workspace_id: str,
    filters: ContactFilter,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Contact], str | None]:
    """Contacts oldest first, ``limit`` at a time; the returned cursor fetches the next page."""
    check_limit(limit)
    query = select(Contact).where(
        Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None)
    )
    try:
        if filters.email:
            query = query.where(Contact.email == normalize_email(filters.email))
        if filters.phone:
            query = query.where(Contact.phone == normalize_phone(filters.phone))
    except InvalidValue as exc:
        raise InvalidInput(str(exc), field="email" if filters.email else "phone") from exc
    if filters.user_id:
        query = query.where(Contact.user_id == filters.user_id)
    if cursor:
        (after,) = decode_cursor(cursor)
        query = query.where(Contact.id > str(after))
    rows = list(session.scalars(query.order_by(Contact.id).limit(limit + 1)))
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def event_view(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "message_id": event.message_id,
        "type": event.type,
        "event": event.event,
        "timestamp": event.timestamp,
        "received_at": event.received_at,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "properties": event.properties,
        "context": event.context,
    }


def contact_events(
    session: Session,
    workspace_id: str,
    contact_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Event], str | None]:
    """A contact's events, newest first (including those of contacts merged into it)."""
    check_limit(limit)
    contact = get_contact(session, workspace_id, contact_id)
    query = select(Event).where(Event.workspace_id == workspace_id, Event.contact_id == contact.id)
    if cursor:
        values = decode_cursor(cursor)
        try:
            at, event_id = datetime.fromisoformat(values[0]), int(values[1])
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidInput("cursor is not one this API returned", field="cursor") from exc
        query = query.where(
            or_(Event.timestamp < at, and_(Event.timestamp == at, Event.id < event_id))
        )
    rows = list(
        session.scalars(query.order_by(Event.timestamp.desc(), Event.id.desc()).limit(limit + 1))
    )
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.timestamp.isoformat(), last.id])
    return rows[:limit], next_cursor
