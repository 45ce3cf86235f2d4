"""Train, evaluate on a time-based holdout, then refit on the latest data and score everyone.

With ``T`` the end of the data (just after the workspace's last event, or
``as_of``) and ``h`` the horizon:

* **evaluation model**: trained on snapshots at ``T - 2h, T - 3h, …, T - (w + 1)h``
  (``w`` windows), whose labels all end by ``T - h``;
* **holdout**: the snapshot at ``T - h``, labels from ``T - h`` to ``T``: data the
  evaluation model never saw, later in time than all of it;
* **final model**: the same recipe moved forward by ``h`` (snapshots at
  ``T - h … T - wh``), which then scores every contact at ``T``.

Reads only; :mod:`jornada.audience.predict.store` writes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jornada.audience.predict.evaluation import classification, date_error
from jornada.audience.predict.features import FEATURES, Snapshot, snapshot
from jornada.audience.predict.history import epoch, event_windows, from_epoch, load_history
from jornada.audience.predict.model import AdditiveModel, Explanation, OneClass, fit
from jornada.errors import InvalidInput
from jornada.events.models import Event

HORIZON_DAYS = 30
WINDOWS = 6  # training snapshots per model, one horizon apart


@dataclass(frozen=True)
class TrainingResult:
    """What a training run found: the evaluation, the final model and everyone's scores."""

    as_of: datetime
    horizon_days: int
    evaluation: dict[str, Any]  # JSON-ready; stored with the model
    model: AdditiveModel
    scored: Snapshot  # every contact at ``as_of``
    explanations: list[Explanation]  # one per row of ``scored``
    holdout: Snapshot
    holdout_probability: np.ndarray[Any, np.dtype[np.float64]]  # empty without an evaluation model


def end_of_data(session: Session, workspace_id: str, now: datetime) -> datetime:
    """Just after the workspace's last event (never later than ``now``)."""
    last = session.scalar(
        select(func.max(Event.timestamp)).where(Event.workspace_id == workspace_id)
    )
    if last is None:
        raise InvalidInput("the workspace has no events to learn from", field="workspace")
    return min(now, last + timedelta(seconds=1))


def _stack(parts: list[Snapshot]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    matrix = np.vstack([s.matrix for s in parts]) if parts else np.zeros((0, len(FEATURES)))
    y = np.concatenate([s.y for s in parts]) if parts else np.zeros(0, dtype=np.int8)
    return matrix, y


def _summary(parts: list[Snapshot]) -> dict[str, Any]:
    contacts = sum(len(s.contact_ids) for s in parts)
    positives = sum(s.positives for s in parts)
    return {
        "cutoffs": [from_epoch(s.cutoff).isoformat() for s in parts],
        "contacts": contacts,
        "positives": positives,
        "base_rate": positives / contacts if contacts else None,
    }


def train(
    session: Session,
    workspace_id: str,
    *,
    now: datetime,
    horizon_days: int = HORIZON_DAYS,
    windows: int = WINDOWS,
    as_of: datetime | None = None,
) -> TrainingResult:
    """Evaluate on the holdout, refit on the latest data and score every contact.

    Raises :class:`InvalidInput` when the workspace has no events, or when no
    training snapshot holds both a contact who ordered and one who did not.
    """
    if horizon_days < 1:
        raise InvalidInput("the horizon is at least 1 day", field="horizon")
    if windows < 1:
        raise InvalidInput("at least 1 training window", field="windows")
    end = as_of or end_of_data(session, workspace_id, now)
    history = load_history(session, workspace_id)
    h = timedelta(days=horizon_days)
    cache: dict[datetime, Snapshot] = {}

    def at(cutoff: datetime) -> Snapshot:
        if cutoff not in cache:
            windows_ = event_windows(session, workspace_id, cutoff)
            cache[cutoff] = snapshot(history, windows_, epoch(cutoff), horizon_days)
        return cache[cutoff]

    def nonempty(cutoffs: list[datetime]) -> list[Snapshot]:
        return [s for s in (at(c) for c in cutoffs) if len(s.contact_ids)]

    # -- evaluation on the holdout ----------------------------------------------------------
    holdout = at(end - h)
    early = nonempty([end - h * (i + 1) for i in range(1, windows + 1)])
    matrix, y = _stack(early)
    train_info = _summary(early)
    evaluation: dict[str, Any] = {
        "as_of": end.isoformat(),
        "horizon_days": horizon_days,
        "train": train_info,
        "holdout": {
            "cutoff": (end - h).isoformat(),
            "until": end.isoformat(),
            "contacts": len(holdout.contact_ids),
            "positives": holdout.positives,
            "base_rate": holdout.positives / len(holdout.contact_ids)
            if holdout.contact_ids
            else None,
        },
    }
    probability = np.zeros(0)
    try:
        evaluation_model = fit(matrix, y)
    except OneClass:
        evaluation["notes"] = [
            "no contact in the training snapshots ordered within the horizon "
            "(or every one did): the holdout cannot be evaluated"
        ]
        evaluation.update(
            roc_auc=None,
            roc_auc_ci95=None,
            recency_auc=None,
            brier=None,
            base_rate_brier=None,
            calibration=[],
        )
    else:
        probability = evaluation_model.probability(holdout.matrix)
        evaluation.update(classification(float(train_info["base_rate"]), holdout, probability))
    evaluation["next_order"] = date_error(holdout)

    # -- the final model, on data up to the end ------------------------------------------------
    latest = nonempty([end - h * i for i in range(1, windows + 1)])
    matrix, y = _stack(latest)
    try:
        model = fit(matrix, y)
    except OneClass:
        raise InvalidInput(
            f"not enough history to train: no snapshot of the last {windows} x {horizon_days} "
            "days holds both a contact who ordered within the horizon and one who did not",
            field="workspace",
        ) from None
    scored = at(end)
    explanations = model.explain(scored.matrix)
    final = _summary(latest)
    evaluation["final"] = {
        **final,
        "scored_contacts": len(scored.contact_ids),
        "mean_probability": float(np.mean([e.probability for e in explanations]))
        if explanations
        else None,
        "with_next_order_date": sum(1 for i in scored.intervals if i.days is not None),
    }
    evaluation["features"] = [f.name for f in FEATURES]
    return TrainingResult(
        as_of=end,
        horizon_days=horizon_days,
        evaluation=evaluation,
        model=model,
        scored=scored,
        explanations=explanations,
        holdout=holdout,
        holdout_probability=probability,
    )
