"""Workspace and ApiKey rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, UTCDateTime


class Workspace(Base):
    """A shop. Every other row belongs to one, and no query crosses two."""

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    url: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """A key, stored only as its SHA-256. ``kind`` is ``write`` (ingestion) or ``secret`` (admin API)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


@dataclass(frozen=True, slots=True)
class WorkspaceRef:
    """What the domain needs of a workspace, detached from any session."""

    id: str
    name: str
    timezone: str
    currency: str

    @classmethod
    def of(cls, workspace: Workspace) -> WorkspaceRef:
        return cls(workspace.id, workspace.name, workspace.timezone, workspace.currency)
