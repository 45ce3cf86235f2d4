"""Audience: segment definitions compiled to SQL and to a predicate, built-ins, RFM, exports,
predictions, lead scoring."""

from jornada.audience.builtins import BUILTINS, HIGH_TICKET
from jornada.audience.compile import ContactLike, to_predicate, to_sql
from jornada.audience.definition import (
    SegmentDefinition,
    SegmentDefinitionError,
    load_definition,
)
from jornada.audience.export import EXPORT_FORMATS, ExportFormat, export_segment
from jornada.audience.membership import Change
from jornada.audience.predict import TrainingResult, contact_prediction, predicted_intervals
from jornada.audience.predict import model_view as prediction_model_view
from jornada.audience.predict import save as save_predictions
from jornada.audience.predict import train as train_predictions
from jornada.audience.queries import (
    builtin_segment,
    builtin_segments,
    find_segment,
    is_builtin,
    keep_segments_current,
    member_ids,
    recheck_segments,
    save_custom_segment,
    segment_members,
    segment_size,
    stored_members,
)
from jornada.audience.rfm import CELLS, RFM, rfm_for_contact, rfm_table
from jornada.audience.rfm_live import keep_rfm_current
from jornada.audience.scoring import (
    ScoringModelError,
    active_model,
    install_model,
    model_versions,
    recheck_scores,
    refresh_score,
    score_events,
    score_view,
    take_score_changes,
)
from jornada.audience.store import (
    SavedSegment,
    custom_segment,
    custom_segments,
    delete_segment,
    segment_versions,
)

__all__ = [
    "BUILTINS",
    "CELLS",
    "EXPORT_FORMATS",
    "HIGH_TICKET",
    "RFM",
    "Change",
    "ContactLike",
    "ExportFormat",
    "SavedSegment",
    "ScoringModelError",
    "SegmentDefinition",
    "SegmentDefinitionError",
    "TrainingResult",
    "active_model",
    "builtin_segment",
    "builtin_segments",
    "contact_prediction",
    "custom_segment",
    "custom_segments",
    "delete_segment",
    "export_segment",
    "find_segment",
    "install_model",
    "is_builtin",
    "keep_rfm_current",
    "keep_segments_current",
    "load_definition",
    "member_ids",
    "model_versions",
    "predicted_intervals",
    "prediction_model_view",
    "recheck_scores",
    "recheck_segments",
    "refresh_score",
    "rfm_for_contact",
    "rfm_table",
    "save_custom_segment",
    "save_predictions",
    "score_events",
    "score_view",
    "segment_members",
    "segment_size",
    "segment_versions",
    "stored_members",
    "take_score_changes",
    "to_predicate",
    "to_sql",
    "train_predictions",
]
