"""Carry out claimed outbox items: messages to their channel, tasks into the CRM, the rest recorded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from jornada.channels.catalog import TemplateBook
from jornada.channels.models import Message
from jornada.channels.sandbox import done, record_effect, send
from jornada.contacts import Contact
from jornada.crm.actions import create_task
from jornada.outbox import OutboxItem
from jornada.workspaces import Workspace


def carry_out(session: Session, items: Sequence[OutboxItem], now: datetime) -> None:
    """Process claimed items in the caller's transaction."""
    if not items:
        return
    ids = sorted({i.contact_id for i in items})
    contacts = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    shops = {
        w.id: w
        for w in session.scalars(
            select(Workspace).where(Workspace.id.in_(sorted({i.workspace_id for i in items})))
        )
    }
    templates = TemplateBook(session, shops)
    out: list[dict[str, Any]] = []
    with session.no_autoflush:  # one flush at the end writes every item's status in bulk
        for item in items:
            contact = contacts[item.contact_id]
            item.attempts += 1
            if item.kind == "send":
                send(session, item, contact, shops[item.workspace_id], now, out, templates)
            elif item.kind == "task":
                session.flush()  # round-robin counts the tasks made earlier in this batch
                create_task(session, item, contact, now)
                done(item, now)
            else:
                record_effect(item, contact, now, out)
    if out:
        session.execute(cast(Table, Message.__table__).insert(), out)
