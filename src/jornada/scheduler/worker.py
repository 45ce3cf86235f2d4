"""Claim due work and do it: run timers, then outbox items, then queued messages' delivery.

Claims happen inside the write transaction that does the work: on PostgreSQL
``FOR UPDATE SKIP LOCKED`` lets several workers share the queue without ever
taking the same row; on SQLite the writer lock (``BEGIN IMMEDIATE``) gives the
same guarantee. A worker killed mid-batch leaves its transaction uncommitted,
so the rows are claimed again, and nothing it did is half-done. Delivery to
providers happens after those commits, with no transaction held across the
network (``jornada.channels.delivery``).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select

from jornada.audience import recheck_scores
from jornada.channels.delivery import Courier, deliver_continuously, deliver_due
from jornada.channels.held import forget_stale
from jornada.clock import Clock
from jornada.config import load_settings
from jornada.db import Database
from jornada.flows import FlowRun, Runner
from jornada.flows.models import RunRow, load_runs
from jornada.ingest.service import recheck_segments_due
from jornada.outbox import OutboxItem
from jornada.scheduler.dispatch import carry_out

BATCH = 500  # rows per transaction: long enough to amortise, short enough not to block ingestion


Q = TypeVar("Q", bound=Select[Any])


def _claimable(database: Database, query: Q) -> Q:
    """Rows no other worker holds: SKIP LOCKED on PostgreSQL; SQLite's writer lock does it there."""
    return query if database.is_sqlite else query.with_for_update(skip_locked=True)


def run_due(database: Database, now: datetime, *, limit: int = BATCH) -> int:
    """Advance runs whose timer is due; returns how many."""
    with database.write() as session:
        runs = load_runs(session, FlowRun.wake_at <= now, limit=limit, lock=not database.is_sqlite)
        by_workspace: dict[str, list[RunRow]] = defaultdict(list)
        for run in runs:
            by_workspace[run.workspace_id].append(run)
        for workspace_id, group in by_workspace.items():
            Runner(session, workspace_id, now).wake(group)
    return len(runs)


def dispatch_due(database: Database, now: datetime, *, limit: int = BATCH) -> int:
    """Carry out pending outbox items that are due; returns how many."""
    with database.write() as session:
        items = list(
            session.scalars(
                _claimable(
                    database,
                    select(OutboxItem)
                    .where(OutboxItem.status == "pending", OutboxItem.due_at <= now)
                    .order_by(OutboxItem.due_at, OutboxItem.id)
                    .limit(limit),
                )
            )
        )
        carry_out(session, items, now)
    return len(items)


def tick(
    database: Database, now: datetime, *, limit: int = BATCH, courier: Courier | None = None
) -> tuple[int, int]:
    """One pass: due runs first (they may enqueue), then the outbox, then what time changed
    (segment re-checks, score decay); with a ``courier``, then the delivery of queued
    messages. Returns (runs, outbox items)."""
    runs, items = run_due(database, now, limit=limit), dispatch_due(database, now, limit=limit)
    recheck_due(database, now, limit=limit)
    if courier is not None:
        deliver_due(database, now, courier, limit=limit)
    return runs, items


def recheck_due(database: Database, now: datetime, *, limit: int = BATCH) -> int:
    """What time alone changes: segment memberships at their re-check moment (their
    ``Segment Entered``/``Exited`` events reach the flows), then lead scores' decay and
    thresholds, and held provider statuses that expired. Returns how many memberships
    changed."""
    changed = recheck_segments_due(database, now, limit=limit)
    with database.write() as session:
        recheck_scores(session, now, limit=limit)
        forget_stale(session, now)  # statuses held a day: for messages Jornada did not send
    return changed


class Worker:
    """Two loops in threads until stopped: the scheduler (due runs, then the outbox) and the
    courier (queued messages to their providers), each sleeping only when it found nothing.

    They run side by side so the network time of delivery never holds up the flows;
    the scheduler wakes the courier as soon as it has queued messages.
    """

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        idle_seconds: float = 1.0,
        courier: Courier | None = None,
    ) -> None:
        """``courier``: how messages leave; by default from the ``JORNADA_*`` settings."""
        self.database = database
        self.clock = clock
        self.idle_seconds = idle_seconds
        self.courier = courier or Courier.from_settings(load_settings(), database.url)
        self._stop = threading.Event()
        self._queued = threading.Event()
        self._thread: threading.Thread | None = None

    def run_forever(self) -> None:
        """Schedule in this thread and deliver in another, until :meth:`stop`."""
        courier = threading.Thread(target=self._deliver, name="jornada-courier", daemon=True)
        courier.start()
        try:
            while not self._stop.is_set():
                runs, items = tick(self.database, self.clock.now())
                if items:
                    self._queued.set()
                if runs < BATCH and items < BATCH:
                    self._stop.wait(self.idle_seconds)
        finally:
            self._stop.set()
            self._queued.set()
            courier.join(timeout=60)

    def _deliver(self) -> None:
        deliver_continuously(
            self.database,
            self.clock,
            self.courier,
            stop=self._stop,
            wake=self._queued,
            idle_seconds=self.idle_seconds,
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="jornada-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._queued.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
