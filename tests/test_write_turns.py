"""SQLite writers of one process take the writer lock in the order they asked for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from jornada.db import Database
from jornada.db.session import Turns
from jornada.migrations import upgrade
from jornada.workspaces import Workspace, create_workspace

NOW = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_a_waiting_writer_goes_before_the_holder_takes_the_lock_again() -> None:
    """The thread that releases and asks again at once (the scheduler between two full
    batches) comes after the one already waiting (the courier, an ingestion request)."""
    turns, order = Turns(), []

    def other() -> None:
        with turns:
            order.append("waiting writer")

    with turns:
        waiter = threading.Thread(target=other)
        waiter.start()
        _until(lambda: turns.waiting == 1, "the other writer never queued")
        order.append("first batch")
    with turns:
        order.append("next batch")
    waiter.join()
    assert order == ["first batch", "waiting writer", "next batch"]
    assert turns.waiting == 0


def test_a_failed_transaction_hands_the_turn_on(tmp_path: Path) -> None:
    """A writer that raises still lets the next one in, and its work is rolled back."""
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    upgrade(url)
    database = Database(url)
    try:
        try:
            with database.write() as session:
                create_workspace(session, "rolled-back", now=NOW)
                raise RuntimeError("the batch failed")
        except RuntimeError:
            pass
        with database.write() as session:
            create_workspace(session, "kept", now=NOW)
        with database.read() as session:
            assert list(session.scalars(select(Workspace.name))) == ["kept"]
    finally:
        database.dispose()
