"""Carry out claimed outbox items: messages to their channel, tasks into the CRM, the rest recorded."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.catalog import TemplateBook
from jornada.channels.history import SendHistory
from jornada.channels.models import Message
from jornada.channels.policy import INTRUSIVE
from jornada.channels.providers import configured
from jornada.channels.sandbox import call_webhook, done, record_effect, send
from jornada.channels.sending import sending_settings_for
from jornada.contacts import Contact
from jornada.crm.actions import create_task
from jornada.db.bulk import Bulk
from jornada.flows import CATALOG
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
    history = SendHistory(
        session,
        items,
        contacts,
        now,
        _flow_quiet_hours(session, items),
        sending_settings_for(session, shops),  # the workspaces' gate settings, once per batch
    )
    providers = configured(session, shops)
    out: list[dict[str, Any]] = []
    with session.no_autoflush:  # one flush at the end writes every item's status in bulk
        for item in items:
            contact = contacts[item.contact_id]
            item.attempts += 1
            if item.kind == "send":
                send(
                    session,
                    item,
                    contact,
                    shops[item.workspace_id],
                    now,
                    out,
                    templates,
                    history,
                    providers,
                )
            elif item.kind == "task":
                session.flush()  # round-robin counts the tasks made earlier in this batch
                create_task(session, item, contact, now)
                done(item, now)
            elif item.kind == "webhook":
                call_webhook(item, contact, shops[item.workspace_id], now, out, providers)
            else:
                record_effect(item, contact, now, out)
    if out:
        _insert_messages(session, out)


#: The message columns holding times (written in the bulk writer's storage format).
_MESSAGE_TIMES = frozenset({"created_at", "next_attempt_at", "sent_at"})


def _insert_messages(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """The batch's message rows (all of one shape) in one ``executemany`` on the DB-API
    cursor, as ingestion writes its events: SQLAlchemy's per-row parameter processing
    was a fifth of the insert's time. Columns left out get their defaults (NULL), as before."""
    bulk = Bulk(session.get_bind().dialect.name)
    columns = list(rows[0])
    bulk.insert(
        session.connection(),
        Message.__tablename__,
        columns,
        [
            tuple(bulk.time(row[c]) if c in _MESSAGE_TIMES else row[c] for c in columns)
            for row in rows
        ],
    )


def _flow_quiet_hours(
    session: Session, items: Sequence[OutboxItem]
) -> dict[tuple[str, str], tuple[str, str]]:
    """Quiet periods set by the flows of the batch's SMS, WhatsApp and voice sends.

    A flow's ``quiet_hours: [from, to]`` is its sending window (e.g. ``['08:00',
    '20:00']``), so the quiet period runs from ``to`` to ``from``. One query per
    workspace (the parsed flows are cached).
    """
    wanted = {
        (i.workspace_id, i.payload.get("flow"))
        for i in items
        if i.kind == "send" and i.channel in INTRUSIVE and isinstance(i.payload.get("flow"), str)
    }
    quiet: dict[tuple[str, str], tuple[str, str]] = {}
    for workspace_id in sorted({w for w, _ in wanted}):
        for flow in CATALOG.active(session, workspace_id):
            window = flow.doc.quiet_hours
            if window is not None and (workspace_id, flow.key) in wanted and _valid(window):
                quiet[(workspace_id, flow.key)] = (window[1], window[0])
    return quiet


def _valid(window: tuple[str, str]) -> bool:
    """Whether both ends read as HH:MM (a flow with a malformed window keeps the default)."""
    return all(re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", end) for end in window)
