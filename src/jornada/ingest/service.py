"""Accepting events: keep the valid ones, report the invalid ones, store each message once.

This is the one path every event takes, whatever its source: the Segment
HTTP API, store webhooks, CSV and Olist imports, the demo store.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text

from jornada.audience import (
    Change,
    keep_rfm_current,
    keep_segments_current,
    recheck_segments,
    score_events,
)
from jornada.contacts import Contact, apply_records
from jornada.db import Database
from jornada.db.bulk import Bulk
from jornada.errors import InvalidInput, PayloadTooLarge
from jornada.events.models import EVENT_COLUMNS
from jornada.events.record import EventRecord
from jornada.flows import CATALOG, Runner
from jornada.ingest.errors import Rejected
from jornada.ingest.pipeline import as_utc, to_record
from jornada.workspaces.models import WorkspaceRef

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    field: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class IngestResult:
    """What happened to a batch: how many were stored, were already known, or were refused."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": not self.rejected,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.to_dict() for r in self.rejected],
        }


def parse_body(body: bytes, *, limit: int) -> dict[str, Any]:
    """The JSON object of a request body, or a clear error."""
    if len(body) > limit:
        raise PayloadTooLarge(
            f"body is {len(body):,} bytes; the limit is {limit:,}", field="body", limit=limit
        )
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}", field="body") from exc
    if not isinstance(value, dict):
        raise InvalidInput("body must be a JSON object", field="body")
    return value


def _parse_time(value: Any, field_name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(value)))
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", field=field_name) from exc


def validate_messages(
    messages: Sequence[Any],
    *,
    received_at: datetime,
    sent_at: datetime | None = None,
    default_type: str | None = None,
    context: dict[str, Any] | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    sizes: Sequence[int] | None = None,
) -> tuple[list[EventRecord], list[Rejection]]:
    """Validate each message on its own; the invalid ones are reported by index, field and reason."""
    records: list[EventRecord] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(messages):
        try:
            size = sizes[index] if sizes is not None else None
            if size is not None and size > max_message_bytes:
                raise Rejected(
                    f"message is {size:,} bytes; the limit is {max_message_bytes:,}",
                    field="message",
                )
            records.append(
                to_record(
                    raw,
                    index=index,
                    received_at=received_at,
                    batch_sent_at=sent_at,
                    default_type=default_type,
                    batch_context=context,
                )
            )
        except Rejected as exc:
            rejected.append(Rejection(index, exc.field or "message", exc.message))
    return records, rejected


def lock_workspace(session: Any, database: Database, workspace_id: str) -> None:
    """On PostgreSQL, one ingesting transaction per workspace at a time.

    Identity resolution reads then writes identities; serialising per workspace
    keeps two concurrent batches from creating the same person twice, and keeps
    the scheduler's segment re-checks from evaluating a contact a batch is
    evaluating (both read, then write, its memberships and re-check moment).
    SQLite already has a single writer.
    """
    if not database.is_sqlite:
        key = int.from_bytes(hashlib.sha256(workspace_id.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@dataclass(slots=True)
class _Job:
    """One caller's records waiting for the group commit."""

    workspace: WorkspaceRef
    records: Sequence[EventRecord]
    now: datetime
    trigger_flows: bool
    result: tuple[int, int] | None = None
    error: BaseException | None = None


class _GroupCommit:
    """Concurrent callers' records, stored by whichever of them gets the writer first.

    Each caller queues its job and takes the write lock; the one that gets it
    stores every queued job in one transaction, jobs of the same workspace as
    one batch, so requests that arrive together share the per-batch work and
    the commit. Every caller returns only after the commit that holds its
    events, so an acknowledgement still means durable.
    """

    def __init__(self) -> None:
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def store(self, database: Database, job: _Job) -> tuple[int, int]:
        with self._queue_lock:
            self._queue.append(job)
        with self._writer:
            if job.result is None and job.error is None:
                with self._queue_lock:
                    jobs, self._queue = self._queue, []
                try:
                    _store_jobs(database, jobs)
                except BaseException as exc:
                    for queued in jobs:
                        queued.error = exc
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result


_GROUPS: weakref.WeakKeyDictionary[Database, _GroupCommit] = weakref.WeakKeyDictionary()
_GROUPS_LOCK = threading.Lock()


def store_records(
    database: Database,
    workspace: WorkspaceRef,
    records: Sequence[EventRecord],
    *,
    now: datetime,
    trigger_flows: bool = True,
) -> tuple[int, int]:
    """Store new events and fold them into contacts; returns (stored, duplicates).

    A messageId seen before (in the log, earlier in the batch, or in a batch
    committed together with this one) is a duplicate: acknowledged, never
    stored or counted twice. Returns once the events are committed.
    """
    if not records:
        return 0, 0
    with _GROUPS_LOCK:
        group = _GROUPS.setdefault(database, _GroupCommit())
    return group.store(database, _Job(workspace, records, now, trigger_flows))


def _store_jobs(database: Database, jobs: list[_Job]) -> None:
    """One transaction for all the jobs; each job's result set once it commits."""
    results: list[tuple[list[_Job], list[bool]]] = []
    with database.write() as session:
        batches: dict[tuple[str, bool], list[_Job]] = {}
        for job in jobs:
            batches.setdefault((job.workspace.id, job.trigger_flows), []).append(job)
        # workspaces locked in id order, as the scheduler's re-checks lock them: no deadlock
        for (_, trigger_flows), group in sorted(batches.items(), key=lambda item: item[0]):
            records = [r for job in group for r in job.records]
            now = max(job.now for job in group)
            fresh = _store(session, database, group[0].workspace, records, now, trigger_flows)
            results.append((group, fresh))
    for group, fresh in results:
        at = 0
        for job in group:
            stored = sum(fresh[at : at + len(job.records)])
            job.result = (stored, len(job.records) - stored)
            at += len(job.records)


def _store(
    session: Any,
    database: Database,
    workspace: WorkspaceRef,
    records: Sequence[EventRecord],
    now: datetime,
    trigger_flows: bool,
) -> list[bool]:
    """Store one workspace's records in the open transaction; whether each one was new."""
    lock_workspace(session, database, workspace.id)
    conn = session.connection()
    bulk = Bulk(database.dialect)
    ids = list({r.message_id for r in records})
    known: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        rows = bulk.select_in(
            conn, "events", ("message_id",), workspace.id, "message_id", ids[start : start + _CHUNK]
        )
        known.update(row[0] for row in rows)
    flags: list[bool] = []
    fresh: list[EventRecord] = []
    for record in records:
        new = record.message_id not in known
        flags.append(new)
        if new:
            known.add(record.message_id)
            fresh.append(record)
    if not fresh:
        return flags
    contact_ids, contacts = apply_records(session, database.dialect, workspace, fresh, now)
    bulk.insert(
        conn,
        "events",
        EVENT_COLUMNS,
        [
            (
                workspace.id,
                r.message_id,
                contact_id,
                r.type,
                r.event,
                r.user_id,
                r.anonymous_id,
                bulk.time(r.timestamp),
                bulk.time(r.received_at),
                bulk.json(r.properties),
                bulk.json(r.context),
            )
            for r, contact_id in zip(fresh, contact_ids, strict=True)
        ],
    )
    score_events(session, workspace.id, fresh, contact_ids, contacts, now)
    keep_rfm_current(session, workspace.id, contacts, now)
    changes = keep_segments_current(
        session,
        workspace.id,
        fresh,
        contact_ids,
        contacts.states,
        now,
        listened=lambda: _listened_segments(session, workspace.id),
    )
    extra, extra_ids = store_segment_changes(conn, bulk, workspace.id, changes, contacts.states)
    if trigger_flows:
        Runner(session, workspace.id, now, contacts=contacts).on_events(
            [*fresh, *extra], [*contact_ids, *extra_ids]
        )
    return flags


def _listened_segments(session: Any, workspace_id: str) -> set[str]:
    return set().union(*(f.segments for f in CATALOG.active(session, workspace_id)))


def store_segment_changes(
    conn: Any,
    bulk: Bulk,
    workspace_id: str,
    changes: Sequence[Change],
    users: Mapping[str, Any],
) -> tuple[list[EventRecord], list[str]]:
    """``Segment Entered``/``Exited`` events of the changes, stored; with their contact ids.

    They go straight to the log with their contact (no identity to resolve, no
    profile to fold: they say what Jornada computed, not what the person did).
    """
    if not changes:
        return [], []
    records = [c.record(getattr(users.get(c.contact_id), "user_id", None)) for c in changes]
    ids = [c.contact_id for c in changes]
    bulk.insert(
        conn,
        "events",
        EVENT_COLUMNS,
        [
            (
                workspace_id,
                r.message_id,
                contact_id,
                r.type,
                r.event,
                r.user_id,
                None,
                bulk.time(r.timestamp),
                bulk.time(r.received_at),
                bulk.json(r.properties),
                None,
            )
            for r, contact_id in zip(records, ids, strict=True)
        ],
        ignore_conflicts=True,
    )
    return records, ids


def recheck_segments_due(database: Database, now: datetime, *, limit: int = 1000) -> int:
    """Evaluate the segment memberships time may have changed; their events reach the flows.

    Returns how many contacts entered or left a segment.
    """
    with database.write() as session:
        by_workspace = recheck_segments(
            session,
            now,
            limit=limit,
            listened=lambda ws: _listened_segments(session, ws),
            lock=lambda ws: lock_workspace(session, database, ws),
        )
        conn = session.connection()
        bulk = Bulk(database.dialect)
        total = 0
        for workspace_id, changes in by_workspace.items():
            users = {
                c.id: c
                for c in session.scalars(
                    select(Contact).where(
                        Contact.workspace_id == workspace_id,
                        Contact.id.in_(sorted({c.contact_id for c in changes})),
                    )
                )
            }
            records, ids = store_segment_changes(conn, bulk, workspace_id, changes, users)
            if records:
                Runner(session, workspace_id, now).on_events(records, ids)
            total += len(records)
    return total


def accept_messages(
    database: Database,
    workspace: WorkspaceRef,
    messages: Sequence[Any],
    *,
    received_at: datetime,
    sent_at: datetime | None = None,
    default_type: str | None = None,
    context: dict[str, Any] | None = None,
    sizes: Sequence[int] | None = None,
    trigger_flows: bool = True,
) -> IngestResult:
    """Validate, deduplicate and store a batch of Segment messages; the valid part is always kept.

    ``trigger_flows=False`` is for history (imports): it builds profiles without
    enrolling anyone in a flow, so a year-old order never messages a customer.
    """
    records, rejected = validate_messages(
        messages,
        received_at=received_at,
        sent_at=sent_at,
        default_type=default_type,
        context=context,
        sizes=sizes,
    )
    stored, duplicates = store_records(
        database, workspace, records, now=received_at, trigger_flows=trigger_flows
    )
    return IngestResult(accepted=stored, duplicates=duplicates, rejected=rejected)


def accept_batch_body(
    database: Database,
    workspace: WorkspaceRef,
    body: dict[str, Any],
    *,
    received_at: datetime,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
) -> IngestResult:
    """``POST /v1/batch``: ``{"batch": [...], "sentAt": ..., "context": ...}``."""
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise InvalidInput("batch must be a list of messages", field="batch")
    context = body.get("context")
    sizes = [len(orjson.dumps(m)) for m in batch]
    return accept_messages(
        database,
        workspace,
        batch,
        received_at=received_at,
        sent_at=_parse_time(body.get("sentAt"), "sentAt"),
        context=context if isinstance(context, dict) else None,
        sizes=sizes,
    )
