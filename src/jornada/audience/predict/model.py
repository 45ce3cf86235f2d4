"""An additive logistic model whose per-contact explanations are exact; pure, no I/O.

The probability of an order is ``sigmoid(b0 + f_1(x_1) + … + f_k(x_k))``: each
feature goes through its own piecewise-linear curve ``f_j`` (a generalised
additive model), fitted by scikit-learn's ``LogisticRegression`` on "hat"
basis functions placed at the training quantiles of the feature, plus one
column for "value missing".

Because the model is a sum, a contact's explanation is exact, not an
approximation: feature ``j`` contributes ``f_j(x_j) - mean_train f_j`` log-odds,
and ``base_value + Σ contributions`` *is* the contact's log-odds, where
``base_value = b0 + Σ mean_train f_j``. Curves (not one slope per feature) let
"days until the usual reorder date" matter most near zero, which a linear
model cannot say.

The fitted model is plain numbers (:meth:`AdditiveModel.to_json`), so it is
stored as JSON and never pickled.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from jornada.audience.predict.features import FEATURES, Feature

Matrix = NDArray[np.float64]

KNOTS = 6  # hat functions per feature at most: quantiles 0, 20, …, 100 % of the training values
C = 0.5  # inverse L2 strength of LogisticRegression; smaller keeps the curves flatter


def _transform(feature: Feature, values: Matrix) -> Matrix:
    out = values.astype(np.float64, copy=True)
    if feature.clip is not None:
        out = np.clip(out, feature.clip[0], feature.clip[1])
    if feature.log:
        out = np.log1p(np.maximum(out, 0.0))
    return out


def _hats(x: Matrix, knots: Sequence[float]) -> Matrix:
    """One column per knot: 1 at that knot, falling linearly to 0 at its neighbours.

    Values outside the knots take the nearest end's value; a missing value gets all
    zeros (the "missing" column says it instead). Each present row sums to 1.
    """
    present = ~np.isnan(x)
    filled = np.where(present, x, knots[0])
    columns = []
    for i in range(len(knots)):
        unit = np.zeros(len(knots))
        unit[i] = 1.0
        columns.append(np.where(present, np.interp(filled, knots, unit), 0.0))
    return np.column_stack(columns) if columns else np.zeros((len(x), 0))


@dataclass(frozen=True)
class _Curve:
    """The basis of one feature: its knots (on the transformed scale) and the missing column."""

    feature: Feature
    knots: tuple[float, ...]

    def basis(self, raw: Matrix) -> Matrix:
        x = _transform(self.feature, raw)
        missing = np.isnan(x).astype(np.float64)[:, None]
        if len(self.knots) < 2:  # constant in training: no shape to learn, only "missing"
            return missing
        return np.hstack([_hats(x, self.knots), missing])

    @classmethod
    def fit(cls, feature: Feature, raw: Matrix) -> _Curve:
        x = _transform(feature, raw)
        seen = x[~np.isnan(x)]
        if seen.size == 0:
            return cls(feature, ())
        quantiles = np.quantile(seen, np.linspace(0.0, 1.0, KNOTS))
        return cls(feature, tuple(float(k) for k in np.unique(quantiles)))

    @property
    def width(self) -> int:
        return 1 if len(self.knots) < 2 else len(self.knots) + 1


@dataclass(frozen=True)
class Explanation:
    """One contact's output: probability, the base log-odds and each feature's share of it."""

    probability: float
    base_value: float
    contributions: tuple[tuple[str, float | None, float], ...]  # (feature, raw value, log-odds)


@dataclass(frozen=True)
class AdditiveModel:
    """A fitted model: curves, their weights and the training means of each curve."""

    curves: tuple[_Curve, ...]
    intercept: float
    weights: tuple[tuple[float, ...], ...]  # per feature, one per basis column
    centres: tuple[float, ...]  # per feature, the mean of its curve over the training rows

    @property
    def base_value(self) -> float:
        return self.intercept + sum(self.centres)

    def _parts(self, matrix: Matrix) -> Matrix:
        """n x k: each feature's curve value for each row (not centred)."""
        parts = [
            curve.basis(matrix[:, j]) @ np.asarray(w, dtype=np.float64)
            for j, (curve, w) in enumerate(zip(self.curves, self.weights, strict=True))
        ]
        return np.column_stack(parts) if parts else np.zeros((len(matrix), 0))

    def log_odds(self, matrix: Matrix) -> Matrix:
        return np.asarray(self.intercept + self._parts(matrix).sum(axis=1), dtype=np.float64)

    def probability(self, matrix: Matrix) -> Matrix:
        return np.asarray(1.0 / (1.0 + np.exp(-self.log_odds(matrix))), dtype=np.float64)

    def explain(self, matrix: Matrix) -> list[Explanation]:
        """Per row: probability and the exact contribution of every feature, largest first."""
        contributions = self._parts(matrix) - np.asarray(self.centres, dtype=np.float64)
        base = self.base_value
        out = []
        for row, raw in zip(contributions, matrix, strict=True):
            logit = base + float(row.sum())
            items = sorted(
                (
                    (
                        curve.feature.name,
                        None if math.isnan(value) else float(value),
                        float(c),
                    )
                    for curve, value, c in zip(self.curves, raw, row, strict=True)
                ),
                key=lambda item: -abs(item[2]),
            )
            out.append(Explanation(1.0 / (1.0 + math.exp(-logit)), base, tuple(items)))
        return out

    # -- storage --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "additive-logistic",
            "intercept": self.intercept,
            "features": [
                {"name": c.feature.name, "knots": list(c.knots), "weights": list(w), "centre": m}
                for c, w, m in zip(self.curves, self.weights, self.centres, strict=True)
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdditiveModel:
        by_name = {f.name: f for f in FEATURES}
        items = data["features"]
        return cls(
            curves=tuple(_Curve(by_name[i["name"]], tuple(i["knots"])) for i in items),
            intercept=float(data["intercept"]),
            weights=tuple(tuple(float(w) for w in i["weights"]) for i in items),
            centres=tuple(float(i["centre"]) for i in items),
        )


class OneClass(ValueError):
    """The training rows hold only one class: there is nothing to learn."""


def fit(
    matrix: Matrix, y: NDArray[np.int8], features: Sequence[Feature] = FEATURES
) -> AdditiveModel:
    """Fit the curves on ``matrix`` (n x len(features), NaN = missing) and labels ``y`` (0/1).

    Raises :class:`OneClass` when ``y`` is all 0 or all 1. Runs on one thread.
    """
    if len(np.unique(y)) < 2:
        raise OneClass("the training rows hold only one class")
    curves = tuple(_Curve.fit(f, matrix[:, j]) for j, f in enumerate(features))
    bases = [c.basis(matrix[:, j]) for j, c in enumerate(curves)]
    design = np.hstack(bases)
    # imported here: scikit-learn takes seconds to import, and only training needs it
    from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    classifier = LogisticRegression(C=C, max_iter=5000)
    with threadpool_limits(limits=1), warnings.catch_warnings():
        # a slow convergence is still the best fit lbfgs found; it is not worth failing a run
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(design, y)
    coef = classifier.coef_[0]
    weights, centres, at = [], [], 0
    for basis in bases:
        w = coef[at : at + basis.shape[1]]
        at += basis.shape[1]
        weights.append(tuple(float(v) for v in w))
        centres.append(float((basis @ w).mean()))
    return AdditiveModel(curves, float(classifier.intercept_[0]), tuple(weights), tuple(centres))
