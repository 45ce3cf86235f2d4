"""Lead-scoring storage: a workspace's model versions, each contact's score state and its reasons."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped


class ScoringModelVersion(WorkspaceScoped, Base):
    """Every version of a workspace's scoring model; the active one scores (none: the default)."""

    __tablename__ = "scoring_models"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "version"),)

    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    checksum: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeadScore(WorkspaceScoped, Base):
    """A contact's scoring state: fit points, live awards per rule, and when to look again.

    ``total`` is what scoring last wrote to ``contacts.score`` (the score
    itself stays on the contact, where flows and segments read it);
    ``engagement`` the decayed engagement points at ``as_of``; ``check_at``
    when decay next needs writing (the re-check reads it through its index).
    """

    __tablename__ = "lead_scores"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "contact_id"),
        Index("ix_lead_scores_check", "workspace_id", "check_at"),
        Index("ix_lead_scores_due", "check_at"),  # the scheduler asks across workspaces
    )

    contact_id: Mapped[str] = mapped_column(String(26))
    model_version: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    engagement: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(Json)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LeadScoreReason(WorkspaceScoped, Base):
    """One change of a contact's score, append-only: the reasons add up to the score."""

    __tablename__ = "lead_score_reasons"
    __table_args__ = (Index("ix_lead_score_reasons_contact", "workspace_id", "contact_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    contact_id: Mapped[str] = mapped_column(String(26))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(64))
