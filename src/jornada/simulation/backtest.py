"""Backtests: replay a workspace's stored history through flows and count what would have happened."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from jornada.contacts import Contact
from jornada.db import Database
from jornada.events import Event
from jornada.simulation.simulator import Effect
from jornada.workspaces import WorkspaceRef


def load_history(
    database: Database, workspace: WorkspaceRef, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(contacts as identify payloads, events as Segment payloads) of the window [start, end]."""
    with database.read() as session:
        events = session.scalars(
            select(Event)
            .where(
                Event.workspace_id == workspace.id,
                Event.timestamp >= start,
                Event.timestamp <= end,
                Event.type != "identify",
            )
            .order_by(Event.timestamp, Event.id)
        ).all()
        ids = sorted({e.contact_id for e in events})
        contacts: list[dict[str, Any]] = []
        user_of: dict[str, str] = {}
        for chunk in range(0, len(ids), 500):
            for c in session.scalars(
                select(Contact).where(
                    Contact.workspace_id == workspace.id,
                    Contact.id.in_(ids[chunk : chunk + 500]),
                )
            ):
                traits: dict[str, Any] = {**c.traits, "timezone": c.timezone}
                if c.email:
                    traits["email"] = c.email
                if c.phone:
                    traits["phone"] = c.phone
                traits["consent"] = {k: bool(v.get("granted")) for k, v in c.consent.items()}
                user_of[c.id] = c.user_id or c.id
                contacts.append(
                    {
                        "userId": c.user_id or c.id,
                        "traits": traits,
                        "timestamp": start.isoformat(),
                        "messageId": f"backtest:{c.id}",
                    }
                )
        payloads = [
            {
                "type": e.type,
                "userId": user_of.get(e.contact_id),
                "event": e.event,
                "name": e.event,
                "properties": e.properties,
                "timestamp": e.timestamp.isoformat(),
                "messageId": e.message_id,
            }
            for e in events
        ]
    return contacts, [{k: v for k, v in p.items() if v is not None} for p in payloads]


def report(effects: list[Effect], zone: str = "America/Sao_Paulo") -> list[dict[str, Any]]:
    """Counts per day, flow, step and action (send, suppress, converted, …)."""
    counts: Counter[tuple[str, str, str | None, str]] = Counter()
    tz = ZoneInfo(zone)
    for e in effects:
        action = e.action
        if action == "exit":
            action = (
                "converted"
                if e.detail.get("reason") == "converted"
                else f"exit:{e.detail.get('reason')}"
            )
        elif action in ("send", "suppress") and e.channel:
            action = f"{action}:{e.channel}"
        counts[(e.at.astimezone(tz).date().isoformat(), e.flow, e.step, action)] += 1
    return [
        {"day": day, "flow": flow, "step": step, "action": action, "count": n}
        for (day, flow, step, action), n in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "", kv[0][3])
        )
    ]
