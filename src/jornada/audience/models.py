"""A workspace's own segments, every version kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, PrimaryKeyConstraint, String, Text
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
