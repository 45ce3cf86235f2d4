"""Engines and sessions, with the SQLite settings that make it a safe embedded database.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout
and foreign keys on. Writers open their transaction with ``BEGIN IMMEDIATE``
so two writers queue on the lock instead of failing when a read upgrades to a
write; within one process a first-come, first-served lock (:class:`Turns`) keeps
writers from even contending, and from starving one another.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    """One database: an engine, a session factory and the write discipline for its dialect."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", echo: bool = False) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, echo=echo, **kwargs)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, sqlite_synchronous)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = Turns()

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; rolled back at the end."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction that commits on success and rolls back on any error."""
        lock = self._write_lock if self.is_sqlite else _NO_LOCK
        with lock, self._sessions() as session:
            # Starts the transaction now: BEGIN IMMEDIATE on SQLite, plain BEGIN elsewhere.
            session.connection(execution_options={"sqlite_immediate": True})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


_NO_LOCK = contextlib.nullcontext()


class Turns:
    """A lock taken in the order it was asked for (a ticket lock).

    ``threading.Lock`` lets the thread that releases it take it straight back: the
    scheduler, going from one full batch to the next, kept the courier and the
    ingestion threads from SQLite's writer for as long as it had work (e-mail
    delivery waited for dispatch to finish). Here each writer waits its turn.
    """

    def __init__(self) -> None:
        self._turn = threading.Condition(threading.Lock())
        self._next = 0  # the ticket the next caller draws
        self._serving = 0  # the ticket whose holder may go

    @property
    def waiting(self) -> int:
        """How many callers hold a ticket and are not yet served (the holder not counted)."""
        with self._turn:
            return max(self._next - self._serving - 1, 0)

    def __enter__(self) -> None:
        with self._turn:
            ticket = self._next
            self._next += 1
            self._turn.wait_for(lambda: self._serving == ticket)

    def __exit__(self, *_: object) -> None:
        with self._turn:
            self._serving += 1
            self._turn.notify_all()


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise ValueError(
            f"JORNADA_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}"
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA cache_size=-16384")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def insert_ignore(table: Table, dialect: str) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the given dialect."""
    stmt = sqlite_insert(table) if dialect == "sqlite" else pg_insert(table)
    return stmt.on_conflict_do_nothing()
