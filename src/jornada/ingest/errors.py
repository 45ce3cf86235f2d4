"""Errors of ingestion."""

from __future__ import annotations

from jornada.errors import InvalidInput


class Rejected(InvalidInput):
    """One message of a batch is invalid; the rest of the batch goes on."""

    code = "invalid_message"
