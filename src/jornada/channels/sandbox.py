"""The sandbox channel: what runs without provider credentials.

A message passes the policy gate, then is stored with its status and shown,
never sent and never dropped; a suppressed or deferred one says why.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jornada.channels.models import Message
from jornada.channels.policy import Allow, Defer, Recipient, gate
from jornada.contacts import Contact
from jornada.outbox import OutboxItem


def _recipient(contact: Contact) -> Recipient:
    return Recipient(
        email=contact.email,
        phone=contact.phone,
        timezone=contact.timezone,
        consent={k: bool(v.get("granted")) for k, v in contact.consent.items()},
    )


def _address(channel: str, contact: Contact) -> str | None:
    if channel == "email":
        return contact.email
    if channel in ("sms", "whatsapp", "voice"):
        return contact.phone
    return contact.id


def coupon_code(prefix: str, key: str) -> str:
    """A unique, unguessable-enough code derived from the effect's idempotency key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:8].upper()
    return f"{prefix}-{digest}"


def record_effect(session: Session, item: OutboxItem, contact: Contact, now: datetime) -> None:
    """Coupons, webhooks and team notifications, recorded as the sandbox's messages."""
    _record(session, item, contact, now, _body(item))
    done(item, now)


def _body(item: OutboxItem) -> str:
    payload: dict[str, Any] = item.payload
    if item.kind == "coupon":
        return coupon_code(str(payload.get("prefix", "VIP")), item.idempotency_key)
    if item.kind == "webhook":
        return f"POST {payload.get('url')}"
    return str(payload.get("message", item.kind))


def send(session: Session, item: OutboxItem, contact: Contact, now: datetime) -> None:
    channel = item.channel or "email"
    verdict = gate(channel, str(item.payload.get("purpose", "marketing")), _recipient(contact), now)
    if isinstance(verdict, Defer):
        item.due_at = verdict.until
        item.reason = verdict.reason
        return
    if not isinstance(verdict, Allow):
        item.status, item.reason, item.processed_at = "suppressed", verdict.reason, now
        return
    _record(session, item, contact, now, f"[{item.payload.get('template')}]")
    done(item, now)


def _record(session: Session, item: OutboxItem, contact: Contact, now: datetime, body: str) -> None:
    channel = item.channel or item.kind
    session.add(
        Message(
            workspace_id=item.workspace_id,
            outbox_id=item.id,
            contact_id=contact.id,
            run_id=item.run_id,
            channel=channel,
            template=str(item.payload.get("template", item.kind)),
            purpose=str(item.payload.get("purpose", "transactional")),
            provider="sandbox",
            to_address=_address(channel, contact),
            subject=None,
            body=body,
            status="sent",
            created_at=now,
        )
    )


def done(item: OutboxItem, now: datetime) -> None:
    item.status, item.processed_at = "done", now
