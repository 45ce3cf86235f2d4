"""A workspace's own segments, every version kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped


class StoredSegment(WorkspaceScoped, Base):
    """One version of a custom segment; the highest version not deleted is the current one."""

    __tablename__ = "segments"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "key", "version"),)

    key: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    where: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SegmentMember(WorkspaceScoped, Base):
    """A contact inside a segment kept current incrementally, since when."""

    __tablename__ = "segment_members"
    __table_args__ = (
        # by contact first: an event reads and writes one contact's rows (migration 0020)
        PrimaryKeyConstraint("workspace_id", "contact_id", "segment_key"),
        Index("ix_segment_members_segment", "workspace_id", "segment_key", "contact_id"),
        {"sqlite_with_rowid": False},
    )

    segment_key: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(26))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SegmentRecheck(WorkspaceScoped, Base):
    """When time alone may change a contact's membership of a segment: evaluate it again then."""

    __tablename__ = "segment_rechecks"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "contact_id", "segment_key"),
        Index("ix_segment_rechecks_due", "due_at"),
        {"sqlite_with_rowid": False},
    )

    segment_key: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[str] = mapped_column(String(26))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RfmValue(WorkspaceScoped, Base):
    """How many customers have one value of one RFM dimension (``r``: last order in µs since
    the epoch, ``f``: orders, ``m``: cents spent); the quintile bounds move along these."""

    __tablename__ = "rfm_values"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "dimension", "value"),)

    dimension: Mapped[str] = mapped_column(String(1))
    value: Mapped[int] = mapped_column(BigInteger)
    customers: Mapped[int] = mapped_column(Integer)


class RfmBounds(WorkspaceScoped, Base):
    """A workspace's RFM quintile bounds as of its last batch, each with how many customers
    rank strictly below it (what lets the next batch move it without a full scan)."""

    __tablename__ = "rfm_bounds"
    __table_args__ = (PrimaryKeyConstraint("workspace_id"),)

    customers: Mapped[int] = mapped_column(Integer)
    bounds: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
