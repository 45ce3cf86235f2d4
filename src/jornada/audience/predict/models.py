"""Stored predictions: each trained model with its evaluation, and every contact's newest scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, UTCDateTime, WorkspaceScoped


class PredictionModel(WorkspaceScoped, Base):
    """One training run of a workspace: its holdout evaluation and the fitted numbers.

    ``version`` counts up per workspace; every version is kept, so evaluations can
    be compared over time. ``parameters`` is the model as JSON (never a pickle).
    """

    __tablename__ = "prediction_models"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "version"),)

    version: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime())
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    horizon_days: Mapped[int] = mapped_column(Integer)
    evaluation: Mapped[dict[str, Any]] = mapped_column(Json)
    parameters: Mapped[dict[str, Any]] = mapped_column(Json)


class ContactPrediction(WorkspaceScoped, Base):
    """A contact's scores from the workspace's newest model (replaced at each training).

    ``probability``: of a counted order within ``horizon_days`` after ``as_of``.
    ``expected_gap_days``: the contact's expected interval between orders;
    ``expected_next_order_at`` is the last order plus it, both null with
    ``next_order_reason`` when the history is too short. ``contributions``:
    ``[{"feature", "value", "contribution"}]`` in log-odds, largest first, which with
    ``base_value`` add up to the log-odds of ``probability``.
    """

    __tablename__ = "contact_predictions"
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "contact_id"),)

    contact_id: Mapped[str] = mapped_column(String(26))
    model_version: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Float)
    base_value: Mapped[float] = mapped_column(Float)
    expected_gap_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected_next_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_order_reason: Mapped[str | None] = mapped_column(String(120), nullable=True)
    contributions: Mapped[list[dict[str, Any]]] = mapped_column(Json)
