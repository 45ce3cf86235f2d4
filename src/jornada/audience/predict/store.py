"""Writes a training run's model and scores; reads them back for the API, the CLI and flows."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from jornada.audience.predict.features import DAY
from jornada.audience.predict.history import from_epoch
from jornada.audience.predict.models import ContactPrediction, PredictionModel
from jornada.audience.predict.train import TrainingResult
from jornada.contacts.queries import get_contact
from jornada.db.bulk import Bulk
from jornada.errors import NotFound

_COLUMNS = (
    "workspace_id",
    "contact_id",
    "model_version",
    "probability",
    "base_value",
    "expected_gap_days",
    "expected_next_order_at",
    "next_order_reason",
    "contributions",
)
_CHUNK = 500  # ids per IN (…) lookup


def save(session: Session, workspace_id: str, result: TrainingResult, now: datetime) -> int:
    """Store the model as the workspace's next version and replace every contact's scores.

    Returns the new version. Runs in the caller's transaction: readers see the old
    scores or the new ones, never a mix.
    """
    latest = session.scalar(
        select(func.max(PredictionModel.version)).where(
            PredictionModel.workspace_id == workspace_id
        )
    )
    version = (latest or 0) + 1
    session.add(
        PredictionModel(
            workspace_id=workspace_id,
            version=version,
            trained_at=now,
            as_of=result.as_of,
            horizon_days=result.horizon_days,
            evaluation=result.evaluation,
            parameters=result.model.to_json(),
        )
    )
    session.flush()
    session.execute(delete(ContactPrediction).where(ContactPrediction.workspace_id == workspace_id))
    bulk = Bulk(session.get_bind().dialect.name)
    scored = result.scored
    rows = []
    for i, (cid, explained) in enumerate(zip(scored.contact_ids, result.explanations, strict=True)):
        gap = scored.intervals[i]
        last = scored.last_order[i]
        next_at = (
            from_epoch(last + gap.days * DAY)
            if gap.days is not None and not math.isnan(last)
            else None
        )
        contributions = [
            {"feature": name, "value": value, "contribution": round(c, 6)}
            for name, value, c in explained.contributions
        ]
        rows.append(
            (
                workspace_id,
                cid,
                version,
                explained.probability,
                explained.base_value,
                gap.days,
                bulk.time(next_at),
                gap.reason,
                bulk.json(contributions),
            )
        )
    connection = session.connection()
    for start in range(0, len(rows), 5000):
        bulk.insert(connection, "contact_predictions", _COLUMNS, rows[start : start + 5000])
    return version


def _model_view(model: PredictionModel) -> dict[str, Any]:
    return {
        "version": model.version,
        "trained_at": model.trained_at.isoformat(),
        "as_of": model.as_of.isoformat(),
        "horizon_days": model.horizon_days,
        "evaluation": model.evaluation,
    }


def latest_model(session: Session, workspace_id: str) -> PredictionModel:
    """The workspace's newest model; :class:`NotFound` before the first training."""
    model = session.scalar(
        select(PredictionModel)
        .where(PredictionModel.workspace_id == workspace_id)
        .order_by(PredictionModel.version.desc())
        .limit(1)
    )
    if model is None:
        raise NotFound(
            "no predictions yet for this workspace: run `jornada predict train`", field="workspace"
        )
    return model


def model_view(session: Session, workspace_id: str) -> dict[str, Any]:
    """The newest model's version, dates and holdout evaluation."""
    return _model_view(latest_model(session, workspace_id))


def contact_prediction(session: Session, workspace_id: str, contact_id: str) -> dict[str, Any]:
    """A contact's newest prediction; :class:`NotFound` for another workspace's or an unscored contact.

    A merged contact's id answers with the survivor's prediction, as the contact API does.
    """
    contact = get_contact(session, workspace_id, contact_id)
    row = session.scalar(
        select(ContactPrediction).where(
            ContactPrediction.workspace_id == workspace_id,
            ContactPrediction.contact_id == contact.id,
        )
    )
    if row is None:
        raise NotFound(
            "no prediction for this contact yet (it is scored at the next `jornada predict train`)",
            field="id",
        )
    model = session.scalar(
        select(PredictionModel).where(
            PredictionModel.workspace_id == workspace_id,
            PredictionModel.version == row.model_version,
        )
    )
    return {
        "contact_id": contact.id,
        "model_version": row.model_version,
        "as_of": model.as_of.isoformat() if model else None,
        "horizon_days": model.horizon_days if model else None,
        "probability": row.probability,
        "expected_next_order_at": (
            row.expected_next_order_at.isoformat() if row.expected_next_order_at else None
        ),
        "expected_gap_days": row.expected_gap_days,
        "next_order_reason": row.next_order_reason,
        "base_value": row.base_value,
        "contributions": row.contributions,
    }


def predicted_intervals(
    session: Session, workspace_id: str, contact_ids: Iterable[str]
) -> dict[str, timedelta | None]:
    """Each contact's stored expected interval between orders (None: no prediction, or none known).

    One query per 500 ids; every id asked for is in the answer, so a caller can
    remember which contacts it has already looked up.
    """
    ids = sorted(set(contact_ids))
    found: dict[str, timedelta | None] = dict.fromkeys(ids)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for cid, days in session.execute(
            select(ContactPrediction.contact_id, ContactPrediction.expected_gap_days).where(
                ContactPrediction.workspace_id == workspace_id,
                ContactPrediction.contact_id.in_(chunk),
            )
        ):
            found[cid] = timedelta(days=days) if days is not None else None
    return found
