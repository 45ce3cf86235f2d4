"""Flow versions, runs and the log of executed steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped


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
