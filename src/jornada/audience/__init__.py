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
    segment_members,
    segment_size,
)
from jornada.audience.rfm import CELLS, RFM, rfm_for_contact, rfm_table

__all__ = [
    "BUILTINS",
    "CELLS",
    "EXPORT_FORMATS",
    "HIGH_TICKET",
    "RFM",
    "ContactLike",
    "ExportFormat",
    "SegmentDefinition",
    "SegmentDefinitionError",
    "builtin_segment",
    "builtin_segments",
    "export_segment",
    "load_definition",
    "rfm_for_contact",
    "rfm_table",
    "segment_members",
    "segment_size",
    "to_predicate",
    "to_sql",
]
