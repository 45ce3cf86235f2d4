"""Predictions: probability of an order within a horizon and the expected next order date, explained.

``features`` (what a contact looks like at a cutoff; pure) → ``history`` (reads it,
a few queries) → ``model`` (an additive logistic model with exact explanations;
pure) → ``evaluation`` (holdout metrics; pure) → ``train`` (holdout, refit,
score) → ``store`` (tables ``prediction_models`` and ``contact_predictions``).
"""

from jornada.audience.predict.features import FEATURES, Feature
from jornada.audience.predict.model import AdditiveModel, Explanation
from jornada.audience.predict.models import ContactPrediction, PredictionModel
from jornada.audience.predict.store import (
    contact_prediction,
    latest_model,
    model_view,
    predicted_intervals,
    save,
)
from jornada.audience.predict.train import HORIZON_DAYS, WINDOWS, TrainingResult, train

__all__ = [
    "FEATURES",
    "HORIZON_DAYS",
    "WINDOWS",
    "AdditiveModel",
    "ContactPrediction",
    "Explanation",
    "Feature",
    "PredictionModel",
    "TrainingResult",
    "contact_prediction",
    "latest_model",
    "model_view",
    "predicted_intervals",
    "save",
    "train",
]
