"""Audience: segment definitions compiled to SQL and to a predicate, built-ins, RFM, exports."""

from jornada.audience.builtins import BUILTINS, HIGH_TICKET
from jornada.audience.compile import ContactLike, to_predicate, to_sql
from jornada.audience.definition import (
    SegmentDefinition,
    SegmentDefinitionError,
    load_definition,
)
from jornada.audience.export import EXPORT_FORMATS, ExportFormat, export_segment
from jornada.audience.queries import (
    builtin_segment,
    builtin_segments,
    find_segment,
    is_builtin,
    save_custom_segment,
    segment_members,
    segment_size,
)
from jornada.audience.rfm import CELLS, RFM, rfm_for_contact, rfm_table
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
    "ContactLike",
    "ExportFormat",
    "SavedSegment",
    "SegmentDefinition",
    "SegmentDefinitionError",
    "builtin_segment",
    "builtin_segments",
    "custom_segment",
    "custom_segments",
    "delete_segment",
    "export_segment",
    "find_segment",
    "is_builtin",
    "load_definition",
    "rfm_for_contact",
    "rfm_table",
    "save_custom_segment",
    "segment_members",
    "segment_size",
    "segment_versions",
    "to_predicate",
    "to_sql",
]
