"""Lead scoring: fit and engagement rules with decay and thresholds, every point explained."""

from jornada.audience.scoring.core import Reason, ScoreState, decayed, score
from jornada.audience.scoring.model import (
    DEFAULT_VERSION,
    ModelDocument,
    ScoringModel,
    ScoringModelError,
    compile_model,
    default_model,
    default_source,
    load_model_text,
)
from jornada.audience.scoring.service import (
    active_model,
    install_model,
    model_versions,
    recheck_scores,
    refresh_score,
    score_events,
    score_view,
    take_score_changes,
)
from jornada.audience.scoring.tables import LeadScore, LeadScoreReason, ScoringModelVersion

__all__ = [
    "DEFAULT_VERSION",
    "LeadScore",
    "LeadScoreReason",
    "ModelDocument",
    "Reason",
    "ScoreState",
    "ScoringModel",
    "ScoringModelError",
    "ScoringModelVersion",
    "active_model",
    "compile_model",
    "decayed",
    "default_model",
    "default_source",
    "install_model",
    "load_model_text",
    "model_versions",
    "recheck_scores",
    "refresh_score",
    "score",
    "score_events",
    "score_view",
    "take_score_changes",
]
