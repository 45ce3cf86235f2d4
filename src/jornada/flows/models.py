"""Flow versions, runs and the log of executed steps."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped
from jornada.db.bulk import Bulk


class FlowVersion(WorkspaceScoped, Base):
    """One version of a flow document. A run keeps the version it started on."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("workspace_id", "key", "version"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    checksum: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FlowRun(WorkspaceScoped, Base):
    """A contact's journey through one flow version.

    ``wake_at`` is set only while the run waits (for a timer or an event's
    timeout) and is indexed, so finding due runs costs what is due, not what waits.
    """

    __tablename__ = "flow_runs"
    __table_args__ = (
        Index("ix_flow_runs_wake", "wake_at"),
        Index("ix_flow_runs_contact", "workspace_id", "contact_id", "status"),
        Index("ix_flow_runs_flow", "workspace_id", "flow_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    flow_version_id: Mapped[str] = mapped_column(String(26))
    flow_key: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(26))
    # scheduled (a date trigger's run, not started) | active | completed | converted | exited
    # | cancelled (a scheduled run that never started)
    status: Mapped[str] = mapped_column(String(16))
    holdout: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int] = mapped_column(Integer)
    waiting: Mapped[str | None] = mapped_column(String(8))
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    wait_event: Mapped[str | None] = mapped_column(String(200))
    vars: Mapped[dict[str, Any]] = mapped_column(Json)
    steps_run: Mapped[int] = mapped_column(Integer)
    log_seq: Mapped[int] = mapped_column(Integer)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(64))
    revenue_cents: Mapped[int | None] = mapped_column(BigInteger)
    trigger_message_id: Mapped[str | None] = mapped_column(String(128))


class FlowRunStep(WorkspaceScoped, Base):
    """What a run did, in order. ``(run_id, seq)`` is unique: a step is never recorded twice."""

    __tablename__ = "flow_run_steps"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(26))
    seq: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict[str, Any]] = mapped_column(Json)


class FlowSegmentMember(WorkspaceScoped, Base):
    """Who is inside a flow's segment predicate now, so entering and leaving can be told apart."""

    __tablename__ = "flow_segment_members"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "flow_key", "contact_id"),)

    flow_key: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(26))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(slots=True, eq=False)
class RunRow:
    """A run as the runner moves it: a plain object read and written in bulk, without ORM bookkeeping.

    Thousands of runs move per second; the ORM's per-attribute tracking cost
    more than the work itself. ``loaded`` keeps the values as read, so only
    changed runs are written back.
    """

    id: str
    workspace_id: str
    flow_version_id: str
    flow_key: str
    contact_id: str
    status: str
    holdout: bool
    position: int
    waiting: str | None
    wake_at: datetime | None
    wait_event: str | None
    vars: dict[str, Any]
    steps_run: int
    log_seq: int
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    revenue_cents: int | None
    trigger_message_id: str | None
    loaded: tuple[Any, ...] | None = field(default=None, repr=False)

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in RUN_COLUMNS}

    def changed(self) -> bool:
        return self.loaded != tuple(getattr(self, name) for name in _MUTABLE)


RUN_COLUMNS = tuple(name for name in RunRow.__dataclass_fields__ if name != "loaded")
_MUTABLE = tuple(c for c in RUN_COLUMNS if c not in ("id", "workspace_id", "contact_id"))
assert set(RUN_COLUMNS) == {c.name for c in FlowRun.__table__.columns}, "RunRow must mirror FlowRun"


def load_runs(
    session: Session, *where: ColumnElement[bool], limit: int | None = None, lock: bool = False
) -> list[RunRow]:
    """Runs matching ``where``, oldest wake first when limited; ``lock`` claims them (SKIP LOCKED)."""
    table = cast(Table, FlowRun.__table__)
    query = select(*(table.c[name] for name in RUN_COLUMNS)).where(*where)
    if limit is not None:
        query = query.order_by(table.c.wake_at).limit(limit)
    if lock:
        query = query.with_for_update(skip_locked=True)
    rows = []
    for values in session.execute(query):
        run = RunRow(*values)
        run.loaded = tuple(getattr(run, name) for name in _MUTABLE)
        rows.append(run)
    return rows


def save_runs(session: Session, runs: Iterable[RunRow]) -> None:
    """Insert the new runs and update the changed ones, each in one ``executemany``."""
    bulk = Bulk(session.get_bind().dialect.name)
    conn = session.connection()
    new, changed = [], []
    for run in runs:
        if run.loaded is None:
            new.append(tuple(_adapt(bulk, name, getattr(run, name)) for name in RUN_COLUMNS))
        elif run.changed():
            changed.append((*(_adapt(bulk, name, getattr(run, name)) for name in _MUTABLE), run.id))
        else:
            continue
        run.loaded = tuple(getattr(run, name) for name in _MUTABLE)
    bulk.insert(conn, "flow_runs", RUN_COLUMNS, new)
    bulk.update(conn, "flow_runs", _MUTABLE, "id", changed)


_TIMES = frozenset({"wake_at", "entered_at", "ended_at"})


def _adapt(bulk: Bulk, name: str, value: Any) -> Any:
    if name in _TIMES:
        return bulk.time(value)
    if name == "vars":
        return bulk.json(value)
    return value
