"""Run flows over recorded events on a virtual clock, with the same code that runs live.

Events are ingested at their own timestamps; between them the clock jumps to
the next due timer or outbox item and the scheduler ticks, exactly as the
worker would. Nothing here re-implements the engine: it only decides *when*
to call ingestion and the scheduler, and reads back what they did.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from jornada.channels.models import Message
from jornada.contacts import Contact
from jornada.crm import Task
from jornada.db import Database
from jornada.flows import FlowDocument, FlowRun, FlowRunStep, install
from jornada.ingest import accept_messages
from jornada.ingest.pipeline import as_utc
from jornada.migrations import upgrade
from jornada.outbox import OutboxItem
from jornada.scheduler import tick
from jornada.workspaces import WorkspaceRef, create_workspace

MAX_BATCH = 1000


@dataclass(frozen=True)
class Effect:
    """One thing a flow did to one contact, at one moment."""

    at: datetime
    flow: str
    contact: str
    step: str | None
    action: str
    channel: str | None = None
    template: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    run: str = field(default="", compare=False)  # which run did it; not part of the JSON output

    def to_json(self, zone: str = "America/Sao_Paulo") -> dict[str, Any]:
        data = asdict(self)
        del data["run"]
        data["at"] = self.at.astimezone(ZoneInfo(zone)).isoformat()
        return data


def _timestamp(message: dict[str, Any]) -> datetime:
    raw = message.get("timestamp")
    if raw is None:
        raise ValueError(f"message {message.get('messageId', '?')} has no timestamp")
    value = as_utc(datetime.fromisoformat(str(raw)))
    assert value is not None
    return value


def _next_due(database: Database) -> datetime | None:
    with database.read() as session:
        run = session.scalar(select(func.min(FlowRun.wake_at)))
        item = session.scalar(
            select(func.min(OutboxItem.due_at)).where(OutboxItem.status == "pending")
        )
    moments = [m for m in (run, item) if m is not None]
    return min(moments) if moments else None


def run_clock(
    database: Database,
    workspace: WorkspaceRef,
    messages: Sequence[dict[str, Any]],
    until: datetime,
) -> None:
    """Feed ``messages`` (sorted by timestamp) and tick the scheduler up to ``until``."""
    position = 0
    while True:
        due = _next_due(database)
        next_event = _timestamp(messages[position]) if position < len(messages) else None
        if next_event is not None and (due is None or next_event <= due) and next_event <= until:
            # events that happened at the same moment go in together, at that moment
            batch: list[dict[str, Any]] = []
            while (
                position < len(messages)
                and len(batch) < MAX_BATCH
                and _timestamp(messages[position]) == next_event
            ):
                batch.append(messages[position])
                position += 1
            accept_messages(database, workspace, batch, received_at=next_event)
            continue
        if due is None or due > until:
            return
        tick(database, due)


def collect(database: Database, workspace_id: str) -> list[Effect]:
    """What the flows did, from the rows the runner and the dispatcher wrote, in execution order."""
    keyed: list[tuple[datetime, str, str, int, Effect]] = []

    def add(seq: int, effect: Effect, run: FlowRun) -> None:
        effect = replace(effect, run=run.id)
        keyed.append((effect.at, effect.contact, effect.flow, seq, effect))

    def seq_of(item: OutboxItem | None) -> int:
        # the outbox key is "<run id>:<step sequence>": the order the run decided things in
        return int(item.idempotency_key.rsplit(":", 1)[1]) if item is not None else 0

    with database.read() as session:
        ws = workspace_id
        runs = {r.id: r for r in session.scalars(select(FlowRun).where(FlowRun.workspace_id == ws))}
        who = {
            c.id: c.user_id or c.email or c.id
            for c in session.scalars(select(Contact).where(Contact.workspace_id == ws))
        }
        outbox = {
            i.id: i
            for i in session.scalars(select(OutboxItem).where(OutboxItem.workspace_id == ws))
        }
        for item in outbox.values():
            run = runs.get(item.run_id or "")
            if run is not None and item.kind == "send" and item.status == "suppressed":
                add(
                    seq_of(item),
                    Effect(
                        item.processed_at or item.created_at,
                        run.flow_key,
                        who[item.contact_id],
                        item.step_id,
                        "suppress",
                        item.channel,
                        str(item.payload.get("template")),
                        {"reason": item.reason},
                    ),
                    run,
                )
        for message in session.scalars(select(Message).where(Message.workspace_id == ws)):
            run = runs.get(message.run_id or "")
            sent = outbox.get(message.outbox_id)
            if run is None or sent is None:
                continue
            detail: dict[str, Any] = {"to": message.to_address}
            if sent.kind == "coupon":
                detail = {
                    "code": message.body,
                    "discount": sent.payload.get("discount"),
                    "expires_at": sent.payload.get("expires_at"),
                }
            elif sent.kind in ("webhook", "notify"):
                detail = {k: v for k, v in sent.payload.items() if k in ("url", "message", "to")}
            is_send = sent.kind == "send"
            add(
                seq_of(sent),
                Effect(
                    message.created_at,
                    run.flow_key,
                    who[message.contact_id],
                    sent.step_id,
                    "send" if is_send else sent.kind,
                    message.channel if is_send else None,
                    message.template if is_send else None,
                    detail,
                ),
                run,
            )
        for task in session.scalars(select(Task).where(Task.workspace_id == ws)):
            run = runs.get(task.run_id or "")
            if run is None:
                continue
            source = outbox.get(task.outbox_id or -1)
            add(
                seq_of(source),
                Effect(
                    task.created_at,
                    run.flow_key,
                    who[task.contact_id],
                    source.step_id if source is not None else None,
                    "task",
                    None,
                    None,
                    {
                        "type": task.type,
                        "assignee": task.assignee,
                        "due_at": task.due_at.isoformat(),
                        "title": task.title,
                        "priority": task.priority,
                    },
                ),
                run,
            )
        for step in session.scalars(select(FlowRunStep).where(FlowRunStep.workspace_id == ws)):
            run = runs[step.run_id]
            contact = who[run.contact_id]
            if step.action == "update":
                for key in ("tag", "stage"):
                    if key in step.detail:
                        add(
                            step.seq,
                            Effect(
                                step.at,
                                run.flow_key,
                                contact,
                                step.step_id,
                                key,
                                detail={key: step.detail[key]},
                            ),
                            run,
                        )
            elif step.action in ("score", "exit"):
                key = "points" if step.action == "score" else "reason"
                add(
                    step.seq,
                    Effect(
                        step.at,
                        run.flow_key,
                        contact,
                        step.step_id,
                        step.action,
                        detail={key: step.detail.get(key)},
                    ),
                    run,
                )
    keyed.sort(key=lambda k: k[:4])
    return [k[4] for k in keyed]


def simulate(
    flows: Iterable[FlowDocument],
    events: Sequence[dict[str, Any]],
    *,
    contacts: Sequence[dict[str, Any]] = (),
    until: datetime | None = None,
    timezone: str = "America/Sao_Paulo",
) -> list[Effect]:
    """Run ``flows`` over Segment ``contacts`` (identify) and ``events`` (track/page) to ``until``.

    ``until`` defaults to one day after the last event. Contacts without a
    timestamp are identified just before the first event.
    """
    events = sorted(events, key=_timestamp)
    if not events:
        return []
    first = _timestamp(events[0])
    people = [
        {
            "type": "identify",
            **c,
            "timestamp": c.get("timestamp", (first - timedelta(seconds=1)).isoformat()),
        }
        for c in contacts
    ]
    messages = sorted([*people, *({"type": "track", **e} for e in events)], key=_timestamp)
    end = until or (_timestamp(events[-1]) + timedelta(days=1))
    folder = Path(tempfile.mkdtemp(prefix="jornada-sim-"))
    url = f"sqlite:///{folder / 'sim.db'}"
    try:
        upgrade(url)
        database = Database(url, sqlite_synchronous="OFF")
        try:
            with database.write() as session:
                created = create_workspace(session, "simulation", now=first, timezone=timezone)
                for doc in flows:
                    install(session, created.id, doc, now=first)
            workspace = WorkspaceRef(created.id, created.name, timezone, "BRL")
            run_clock(database, workspace, messages, end)
            return collect(database, created.id)
        finally:
            database.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
