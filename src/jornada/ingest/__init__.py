"""Ingestion: Segment-compatible messages and imports → the event log and contact profiles."""

from jornada.ingest.service import (
    IngestResult,
    Rejection,
    accept_batch_body,
    accept_messages,
    parse_body,
    store_records,
    validate_messages,
)

__all__ = [
    "IngestResult",
    "Rejection",
    "accept_batch_body",
    "accept_messages",
    "parse_body",
    "store_records",
    "validate_messages",
]
