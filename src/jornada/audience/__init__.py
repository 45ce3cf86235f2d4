"""Audience: segment definitions, compiled to SQL and to a predicate, and the built-in segments."""

from jornada.audience.builtins import BUILTINS, HIGH_TICKET
from jornada.audience.compile import ContactLike, to_predicate, to_sql
from jornada.audience.definition import (
    SegmentDefinition,
    SegmentDefinitionError,
    load_definition,
)
from jornada.audience.queries import (
    builtin_segment,
    builtin_segments,
    segment_members,
    segment_size,
)

__all__ = [
    "BUILTINS",
    "HIGH_TICKET",
    "ContactLike",
    "SegmentDefinition",
    "SegmentDefinitionError",
    "builtin_segment",
    "builtin_segments",
    "load_definition",
    "segment_members",
    "segment_size",
    "to_predicate",
    "to_sql",
]
