"""Bulk loading: stream messages from a source through the normal ingestion path, in batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from jornada.clock import Clock
from jornada.db import Database
from jornada.ingest.service import accept_messages
from jornada.workspaces.models import WorkspaceRef

BATCH_SIZE = 2000


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """Something that could not be imported, and where it came from."""

    where: str
    reason: str


@dataclass(slots=True)
class ImportReport:
    accepted: int = 0
    duplicates: int = 0
    problems: list[ImportProblem] = field(default_factory=list)


def import_messages(
    database: Database,
    workspace: WorkspaceRef,
    messages: Iterable[tuple[str, dict[str, Any]]],
    *,
    clock: Clock,
    batch_size: int = BATCH_SIZE,
    on_batch: Callable[[int], None] | None = None,
    trigger_flows: bool = False,
) -> ImportReport:
    """Ingest ``(where, message)`` pairs; ``where`` (e.g. ``file.csv:12``) labels any rejection.

    Memory stays bounded by ``batch_size`` whatever the size of the source. An
    import is history: it enrols nobody in flows unless ``trigger_flows`` says so.
    """
    report = ImportReport()
    batch: list[dict[str, Any]] = []
    origins: list[str] = []

    def flush() -> None:
        result = accept_messages(
            database, workspace, batch, received_at=clock.now(), trigger_flows=trigger_flows
        )
        report.accepted += result.accepted
        report.duplicates += result.duplicates
        report.problems.extend(
            ImportProblem(origins[r.index], f"{r.field}: {r.reason}") for r in result.rejected
        )
        if on_batch is not None:
            on_batch(len(batch))
        batch.clear()
        origins.clear()

    for where, message in messages:
        batch.append(message)
        origins.append(where)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report
