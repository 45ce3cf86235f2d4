"""Holdout metrics: ROC AUC (with a bootstrap interval), Brier score, calibration, date error; pure."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from jornada.audience.predict.features import DAY, FEATURE_NAMES, Snapshot

MIN_POSITIVES = 20  # below this many positives in the holdout, an AUC is mostly noise
BOOTSTRAP = 200  # resamples for the AUC's 95 % interval
BINS = 5  # calibration bins, of equal count, by predicted probability

Vector = NDArray[np.float64]


def _metrics() -> Any:
    """scikit-learn's metrics, imported on first use: the import takes seconds."""
    import sklearn.metrics  # type: ignore[import-untyped]

    return sklearn.metrics


def auc(y: NDArray[np.int8], scores: Vector) -> float | None:
    """ROC AUC, or None when the rows hold one class only (it is undefined then)."""
    if len(np.unique(y)) < 2:
        return None
    return float(_metrics().roc_auc_score(y, scores))


def auc_interval(
    y: NDArray[np.int8], scores: Vector, *, seed: int = 0
) -> tuple[float, float] | None:
    """The 2.5 and 97.5 percentiles of the AUC over bootstrap resamples of the rows (seeded)."""
    if len(np.unique(y)) < 2:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(y), len(y))
        value = auc(y[pick], scores[pick])
        if value is not None:
            values.append(value)
    if not values:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def calibration(y: NDArray[np.int8], p: Vector, bins: int = BINS) -> list[dict[str, Any]]:
    """Rows sorted by predicted probability, cut into ``bins`` groups of (nearly) equal size."""
    order = np.argsort(p, kind="stable")
    table = []
    for part in np.array_split(order, min(bins, len(order))):
        if part.size == 0:
            continue
        table.append(
            {
                "lower": float(p[part].min()),
                "upper": float(p[part].max()),
                "mean_predicted": float(p[part].mean()),
                "observed_rate": float(y[part].mean()),
                "count": int(part.size),
                "positives": int(y[part].sum()),
            }
        )
    return table


def recency_scores(snapshot: Snapshot) -> Vector:
    """The baseline "who ordered most recently": minus the days since the last order.

    Contacts without orders rank below every customer.
    """
    days = snapshot.matrix[:, FEATURE_NAMES.index("days_since_last_order")]
    return np.where(np.isnan(days), -1e9, -days)


def classification(train_rate: float, holdout: Snapshot, probability: Vector) -> dict[str, Any]:
    """AUC, its interval, Brier score and calibration of ``probability`` on the holdout rows."""
    y = holdout.y
    notes: list[str] = []
    positives = int(y.sum())
    if len(y) == 0:
        notes.append("the holdout holds no contacts: nothing to evaluate")
    elif positives == 0:
        notes.append("no contact in the holdout ordered within the horizon: AUC is undefined")
    elif positives < MIN_POSITIVES:
        notes.append(
            f"only {positives} positives in the holdout (fewer than {MIN_POSITIVES}): "
            "the AUC is mostly noise; read its interval"
        )
    brier_score_loss = _metrics().brier_score_loss
    have_rows = len(y) > 0
    interval = auc_interval(y, probability)
    return {
        "roc_auc": auc(y, probability),
        "roc_auc_ci95": list(interval) if interval else None,
        "recency_auc": auc(y, recency_scores(holdout)),
        "brier": float(brier_score_loss(y, probability)) if have_rows else None,
        "base_rate_brier": (
            float(brier_score_loss(y, np.full(len(y), train_rate))) if have_rows else None
        ),
        "calibration": calibration(y, probability) if have_rows else [],
        "notes": notes,
    }


def date_error(holdout: Snapshot) -> dict[str, Any]:
    """Median absolute error, in days, of the expected next order date on the holdout.

    Only contacts with an estimate who did order again before the end of the data
    can be measured; the others' next order is not known yet (censored), so the
    figure leans toward people with short intervals.
    """
    errors: list[float] = []
    heuristic: list[float] = []
    for i, gap in enumerate(holdout.intervals):
        actual = holdout.next_order[i]
        if gap.days is None or np.isnan(actual):
            continue
        errors.append(abs(holdout.last_order[i] + gap.days * DAY - actual) / DAY)
        old = holdout.heuristic_days[i]
        if not np.isnan(old):
            heuristic.append(abs(holdout.last_order[i] + old * DAY - actual) / DAY)
    return {
        "contacts": len(errors),
        "median_abs_days": float(np.median(errors)) if errors else None,
        "heuristic_median_abs_days": float(np.median(heuristic)) if heuristic else None,
    }
