"""Flow engine benchmark: due steps/s with a million runs waiting, idle tick cost, ingestion cost of flows.

Prints figures from one run on this machine, each with the baseline it is
compared with in the same run. Run with `make bench` (or `python bench/flows.py`).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import shutil
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from jornada.db import Database
from jornada.db.bulk import Bulk
from jornada.flows import FlowDocument, install, library_flows
from jornada.ingest import accept_batch_body
from jornada.migrations import upgrade
from jornada.scheduler import dispatch_due, run_due
from jornada.workspaces import WorkspaceRef, create_workspace


def _sibling(name: str) -> Any:
    """A module of bench/ by path: putting bench/ on sys.path would let bench/email.py
    hide the standard library's ``email``."""
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parent / f"{name}.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_batches = _sibling("ingest").make_batches

FLOW = FlowDocument.model_validate(
    {
        "key": "bench",
        "name": "Bench",
        "trigger": {"manual": True},
        "steps": [
            {"id": "espera", "wait": "1h"},
            {
                "id": "email",
                "send": {
                    "channel": "email",
                    "template": "order-confirmation",
                    "purpose": "transactional",
                },
            },
            {"id": "depois", "wait": "30d"},
        ],
    }
)
RUN_COLUMNS = (
    "id",
    "workspace_id",
    "flow_version_id",
    "flow_key",
    "contact_id",
    "status",
    "holdout",
    "position",
    "waiting",
    "wake_at",
    "wait_event",
    "vars",
    "steps_run",
    "log_seq",
    "entered_at",
    "ended_at",
    "end_reason",
    "revenue_cents",
    "trigger_message_id",
)
CONTACT_COLUMNS = (
    "id",
    "workspace_id",
    "user_id",
    "email",
    "phone",
    "traits",
    "first_seen_at",
    "last_seen_at",
    "locale",
    "timezone",
    "timezone_source",
    "tags",
    "stage",
    "owner",
    "consent",
    "merged_into_id",
    "currency",
    "orders_count",
    "total_spent_cents",
    "first_order_at",
    "last_order_at",
    "last_product_viewed",
    "open_cart",
    "open_boletos",
    "created_at",
    "updated_at",
)


def new_db(folder: Path, name: str) -> tuple[Database, WorkspaceRef, str]:
    url = f"sqlite:///{folder / name}"
    upgrade(url)
    database = Database(url)
    now = datetime.now(UTC)
    with database.write() as session:
        created = create_workspace(session, "bench", now=now)
        version = install(session, created.id, FLOW, now=now)
    return database, WorkspaceRef(created.id, "bench", "America/Sao_Paulo", "BRL"), version.id


def seed_runs(
    database: Database, ws: WorkspaceRef, version_id: str, waiting: int, due: int
) -> None:
    """``waiting`` runs asleep for a year, ``due`` of them (with real contacts) due now."""
    bulk = Bulk("sqlite")
    now = datetime.now(UTC)
    past, future = bulk.time(now - timedelta(hours=2)), bulk.time(now + timedelta(days=365))
    entered = bulk.time(now - timedelta(hours=3))
    consent = bulk.json({"email_transactional": {"granted": True, "source": "bench", "at": ""}})
    with database.write() as session:
        conn = session.connection()
        for start in range(0, due, 10_000):
            bulk.insert(
                conn,
                "contacts",
                CONTACT_COLUMNS,
                [
                    (
                        f"C{n:025d}",
                        ws.id,
                        f"u{n}",
                        f"u{n}@loja.test",
                        None,
                        "{}",
                        entered,
                        entered,
                        None,
                        "America/Sao_Paulo",
                        "workspace",
                        "[]",
                        "New",
                        None,
                        consent,
                        None,
                        "BRL",
                        0,
                        0,
                        None,
                        None,
                        None,
                        None,
                        "[]",
                        entered,
                        entered,
                    )
                    for n in range(start, min(due, start + 10_000))
                ],
            )
        for start in range(0, waiting, 20_000):
            rows = []
            for n in range(start, min(waiting, start + 20_000)):
                is_due = n < due
                rows.append(
                    (
                        f"R{n:025d}",
                        ws.id,
                        version_id,
                        "bench",
                        f"C{n % max(due, 1):025d}",
                        "active",
                        False,
                        0,
                        "timer",
                        past if is_due else future,
                        None,
                        '{"trigger": {}}',
                        1,
                        2,
                        entered,
                        None,
                        None,
                        None,
                        None,
                    )
                )
            bulk.insert(conn, "flow_runs", RUN_COLUMNS, rows)


def fire(database: Database, due: int) -> tuple[float, int, int]:
    now = datetime.now(UTC)
    started = time.perf_counter()
    woken = 0
    while woken < due:
        n = run_due(database, now)
        if n == 0:
            break
        woken += n
    delivered = 0
    while True:
        n = dispatch_due(database, now)
        if n == 0:
            break
        delivered += n
    return time.perf_counter() - started, woken, delivered


def idle_ticks(small: Database, big: Database, repeat: int = 101) -> tuple[float, float]:
    """Median seconds of one pass over due runs and outbox when nothing is due, on each database.

    The two are sampled alternately, so a busy moment of the machine weighs on both alike.
    """
    now = datetime.now(UTC)
    samples: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(repeat):
        for n, database in enumerate((small, big)):
            started = time.perf_counter()
            assert run_due(database, now) == 0
            assert dispatch_due(database, now) == 0
            samples[n].append(time.perf_counter() - started)
    small_s, big_s = (sorted(samples[n])[repeat // 2] for n in (0, 1))
    return small_s, big_s


def _ingest_db(folder: Path, name: str, flows: list[FlowDocument]) -> tuple[Database, WorkspaceRef]:
    url = f"sqlite:///{folder / name}"
    upgrade(url)
    database = Database(url)
    now = datetime.now(UTC)
    with database.write() as session:
        created = create_workspace(session, "bench", now=now)
        for doc in flows:
            install(session, created.id, doc, now=now)
    return database, WorkspaceRef(created.id, "bench", "America/Sao_Paulo", "BRL")


def ingestion(folder: Path, batches: list[dict[str, Any]]) -> tuple[float, float]:
    """Events/s of the same batches into a workspace without flows and one with the 15.

    Batches go to the two databases alternately, so a busy moment of the
    machine weighs on both alike and the ratio stays honest.
    """
    bare, bare_ws = _ingest_db(folder, "none.db", [])
    full, full_ws = _ingest_db(folder, "library.db", library_flows())
    bodies = [orjson.dumps(b) for b in batches]
    total = sum(len(b["batch"]) for b in batches)
    spent = {0: 0.0, 1: 0.0}
    for body in bodies:
        for n, (database, ws) in enumerate(((bare, bare_ws), (full, full_ws))):
            started = time.perf_counter()
            accept_batch_body(database, ws, orjson.loads(body), received_at=datetime.now(UTC))
            spent[n] += time.perf_counter() - started
    bare.dispose()
    full.dispose()
    return total / spent[0], total / spent[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--waiting", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    folder = Path(tempfile.mkdtemp(prefix="jornada-bench-flows-"))
    try:
        small, ws, version = new_db(folder, "small.db")
        seed_runs(small, ws, version, waiting=10_000, due=0)
        big, ws, version = new_db(folder, "big.db")
        started = time.perf_counter()
        seed_runs(big, ws, version, waiting=args.waiting, due=args.due)
        print(
            f"seeded {args.waiting:,} waiting runs ({args.due:,} due) in {time.perf_counter() - started:.1f} s"
        )
        seconds, woken, delivered = fire(big, args.due)
        steps = woken * 2  # each woken run executes its send step and its next wait step
        print(
            f"fired {woken:,} due runs = {steps:,} steps + {delivered:,} sandbox deliveries in "
            f"{seconds:.1f} s: {steps / seconds:,.0f} steps/s   (target >= 2,000)"
        )
        idle_small, idle_big = idle_ticks(small, big)
        print(f"idle tick at {10_000:>9,} waiting runs: {idle_small * 1000:.2f} ms")
        print(
            f"idle tick at {args.waiting:>9,} waiting runs: {idle_big * 1000:.2f} ms   "
            f"ratio {idle_big / idle_small:.2f} (target <= 2)"
        )
        batches = make_batches(args.events, 5_000, seed=3)
        none, library = ingestion(folder, batches)
        print(f"ingestion, no flows:          {none:>8,.0f} events/s")
        print(
            f"ingestion, 15 library flows:  {library:>8,.0f} events/s   ratio {library / none:.2f} "
            "(target >= 0.5)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
