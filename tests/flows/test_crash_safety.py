"""Workers killed with SIGKILL at random moments lose no step and repeat none (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from jornada.channels.models import Message
from jornada.db import Database
from jornada.flows import FlowDocument, FlowRun, FlowRunStep, install
from jornada.ingest import accept_messages
from jornada.outbox import OutboxItem
from tests.conftest import Shop

RUNS = 1000
EXPECTED = ["enter", "send", "wait", "send", "wait", "send", "exit"]
FLOW = FlowDocument.model_validate(
    {
        "key": "crash-test",
        "name": "Crash test",
        "trigger": {"event": "Go"},
        "steps": [
            {
                "id": "a",
                "send": {
                    "channel": "email",
                    "template": "order-confirmation",
                    "purpose": "transactional",
                },
            },
            {"id": "w1", "wait": "1s"},
            {
                "id": "b",
                "send": {
                    "channel": "push",
                    "template": "reactivation-push",
                    "purpose": "transactional",
                },
            },
            {"id": "w2", "wait": "1s"},
            {
                "id": "c",
                "send": {
                    "channel": "email",
                    "template": "order-delivered",
                    "purpose": "transactional",
                },
            },
        ],
    }
)


def enrol(database: Database, shop: Shop) -> None:
    """RUNS contacts enter the flow two hours ago, so every later step is already due."""
    past = datetime.now(UTC) - timedelta(hours=2)
    with database.write() as session:
        install(session, shop.ref.id, FLOW, now=past)
    people = [
        {
            "type": "identify",
            "userId": f"u{i}",
            "timestamp": past.isoformat(),
            "traits": {"email": f"u{i}@loja.com"},
        }
        for i in range(RUNS)
    ]
    go = [
        {"type": "track", "userId": f"u{i}", "event": "Go", "timestamp": past.isoformat()}
        for i in range(RUNS)
    ]
    for start in range(0, RUNS, 500):
        accept_messages(
            database,
            shop.ref,
            people[start : start + 500] + go[start : start + 500],
            received_at=past,
        )


def start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jornada", "worker", "--idle", "0.05"],
        env={**os.environ, "JORNADA_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pending(database: Database, shop: Shop) -> int:
    with database.read() as session:
        runs = session.scalar(
            select(func.count())
            .select_from(FlowRun)
            .where(FlowRun.workspace_id == shop.ref.id, FlowRun.status == "active")
        )
        items = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.workspace_id == shop.ref.id, OutboxItem.status == "pending")
        )
    return (runs or 0) + (items or 0)


def assert_exactly_once(database: Database, shop: Shop) -> None:
    with database.read() as session:
        logs: dict[str, list[str]] = {}
        for run_id, action in session.execute(
            select(FlowRunStep.run_id, FlowRunStep.action)
            .where(FlowRunStep.workspace_id == shop.ref.id)
            .order_by(FlowRunStep.run_id, FlowRunStep.seq)
        ):
            logs.setdefault(run_id, []).append(action)
        statuses = Counter(
            session.scalars(select(OutboxItem.status).where(OutboxItem.workspace_id == shop.ref.id))
        )
        per_item = Counter(
            session.scalars(select(Message.outbox_id).where(Message.workspace_id == shop.ref.id))
        )
        runs = Counter(
            session.scalars(select(FlowRun.status).where(FlowRun.workspace_id == shop.ref.id))
        )
    assert runs == {"completed": RUNS}
    assert len(logs) == RUNS
    assert all(actions == EXPECTED for actions in logs.values())
    assert statuses == {"done": 3 * RUNS}
    assert len(per_item) == 3 * RUNS
    assert set(per_item.values()) == {1}


def kill_and_restart(
    url: str, database: Database, shop: Shop, workers: int, rng: random.Random
) -> int:
    """Start workers, SIGKILL them at a random moment once they are working, five times over;
    then let fresh workers finish. Returns how many kills landed while work remained."""
    kills = 0
    for _ in range(5):
        before = pending(database, shop)
        if before == 0:
            break
        procs = [start_worker(url) for _ in range(workers)]
        deadline = time.monotonic() + 60
        while pending(database, shop) == before and time.monotonic() < deadline:
            time.sleep(0.02)  # wait until they are really working
        time.sleep(rng.uniform(0.0, 0.3))
        for proc in procs:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        kills += len(procs) if pending(database, shop) else 0
    procs = [start_worker(url) for _ in range(workers)]
    deadline = time.monotonic() + 120
    while pending(database, shop) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in procs:
        proc.terminate()
        proc.wait()
    return kills


def test_sigkilled_workers_on_sqlite_execute_every_step_exactly_once(
    database: Database, database_url: str, shop: Shop
) -> None:
    """A worker SIGKILLed again and again mid-run: every step runs once, every message goes once."""
    if database.dialect != "sqlite":
        pytest.skip("the PostgreSQL variant below runs three workers at once")
    enrol(database, shop)
    kills = kill_and_restart(database_url, database, shop, workers=1, rng=random.Random(7))
    assert kills >= 2
    assert_exactly_once(database, shop)


@pytest.mark.postgres
def test_three_workers_on_postgresql_never_run_a_step_twice(
    database: Database, database_url: str, shop: Shop
) -> None:
    """Three workers share the queue with SKIP LOCKED, are killed at random, and no step runs twice."""
    if database.dialect != "postgresql":
        pytest.skip("SKIP LOCKED claims are a PostgreSQL feature")
    enrol(database, shop)
    kills = kill_and_restart(database_url, database, shop, workers=3, rng=random.Random(11))
    assert kills >= 3
    assert_exactly_once(database, shop)
