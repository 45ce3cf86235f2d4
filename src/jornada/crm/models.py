"""Team members and their tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, UTCDateTime, WorkspaceScoped


class Member(WorkspaceScoped, Base):
    """Someone on the shop's team who can own contacts and take tasks."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Task(WorkspaceScoped, Base):
    """Work for a person (call, WhatsApp, meeting, ticket) with an SLA: ``due_at``."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_contact", "workspace_id", "contact_id"),
        Index("ix_tasks_open", "workspace_id", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(26))
    run_id: Mapped[str | None] = mapped_column(String(26))
    outbox_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(500))
    assignee: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8))  # open | done | cancelled
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
