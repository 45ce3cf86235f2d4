"""The shell around :mod:`~jornada.audience.scoring.core`: load, score, write, in the caller's transaction.

* :func:`score_events` is what ingestion calls for each batch, after the
  events are folded into contacts and before flows run. Only rules that
  listen to an event's name are looked at (one dict lookup per event); a
  batch no rule listens to costs one small query (the active model version).
* :func:`refresh_score` brings one contact's score to now (decay, fit) when it
  is read; :func:`recheck_scores` does it for the contacts whose ``check_at``
  is due, so a score that decays below a threshold is seen without a read.
* Threshold crossings emit a ``Score Changed`` event of the contact and may
  move its lifecycle stage forward; upward crossings made during ingestion are
  handed to the flow runner (:func:`take_score_changes`) so ``score_above``
  flows enrol.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jornada.audience.scoring.core import Outcome, ScoredEvent, ScoreState, next_check, score
from jornada.audience.scoring.model import (
    DEFAULT_VERSION,
    ModelDocument,
    ScoringModel,
    compile_model,
    default_model,
)
from jornada.audience.scoring.tables import LeadScore, LeadScoreReason, ScoringModelVersion
from jornada.contacts import change_contact, get_contact
from jornada.contacts.actions import ContactBatch
from jornada.contacts.state import ContactState
from jornada.db.bulk import Bulk
from jornada.events.canonical import SCORE_CHANGED
from jornada.events.models import EVENT_COLUMNS
from jornada.ids import new_id

_SCORE_COLUMNS = (
    "workspace_id",
    "contact_id",
    "model_version",
    "total",
    "engagement",
    "state",
    "as_of",
    "check_at",
)
_CHANGES = "jornada.audience.scoring.before"  # session.info: {workspace_id: {contact_id: score}}
_CHUNK = 500


# -- models --------------------------------------------------------------------------------
class _Models:
    """Compiled models by (workspace, version), so a batch pays one narrow query for the model."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, int], ScoringModel] = {}
        self._lock = threading.Lock()

    def active(self, session: Session, workspace_id: str) -> ScoringModel:
        conn = session.connection()
        bulk = Bulk(conn.dialect.name)
        found = bulk.rows(  # every batch asks: the driver's cursor, not an ORM query
            conn,
            f"SELECT version FROM scoring_models WHERE workspace_id = {bulk.mark} AND active",
            (workspace_id,),
        )
        if not found:
            return default_model()
        return self.version(session, workspace_id, int(found[0][0]))

    def version(self, session: Session, workspace_id: str, version: int) -> ScoringModel:
        key = (workspace_id, version)
        model = self._compiled.get(key)
        if model is None:
            row = session.get(ScoringModelVersion, (workspace_id, version))
            if row is None:
                raise LookupError(f"scoring model version {version} does not exist")
            model = compile_model(row.document, version)
            with self._lock:
                self._compiled[key] = model
        return model


MODELS = _Models()


def active_model(session: Session, workspace_id: str) -> ScoringModel:
    """The workspace's active scoring model: its latest installed version, else the default."""
    return MODELS.active(session, workspace_id)


def install_model(
    session: Session, workspace_id: str, document: Mapping[str, Any], *, now: datetime
) -> tuple[ScoringModel, bool]:
    """Validate ``document`` and make it the workspace's model; returns it and whether it is new.

    Every version is kept; an unchanged document keeps (and re-activates) its version.
    """
    doc = ModelDocument.model_validate(compile_model(document, 0).document)
    stored = doc.model_dump(mode="json")
    digest = hashlib.sha256(orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)).hexdigest()
    versions = list(
        session.scalars(
            select(ScoringModelVersion)
            .where(ScoringModelVersion.workspace_id == workspace_id)
            .order_by(ScoringModelVersion.version.desc())
        )
    )
    same = next((v for v in versions if v.checksum == digest), None)
    if same is not None and versions[0] is same:
        same.active = True
        session.flush()  # active_model reads through the driver: it sees flushed rows only
        return MODELS.version(session, workspace_id, same.version), False
    for row in versions:
        row.active = False
    row = ScoringModelVersion(
        workspace_id=workspace_id,
        version=(versions[0].version + 1) if versions else 1,
        document=stored,
        checksum=digest,
        active=True,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return MODELS.version(session, workspace_id, row.version), True


def model_versions(session: Session, workspace_id: str) -> list[dict[str, Any]]:
    """Every stored version of the workspace's model, newest first (without documents)."""
    return [
        {"version": v, "name": doc.get("name"), "active": active, "created_at": at}
        for v, doc, active, at in session.execute(
            select(
                ScoringModelVersion.version,
                ScoringModelVersion.document,
                ScoringModelVersion.active,
                ScoringModelVersion.created_at,
            )
            .where(ScoringModelVersion.workspace_id == workspace_id)
            .order_by(ScoringModelVersion.version.desc())
        )
    ]


# -- ingestion -----------------------------------------------------------------------------
def score_events(
    session: Session,
    workspace_id: str,
    records: Sequence[ScoredEvent],
    contact_ids: Sequence[str],
    contacts: ContactBatch,
    now: datetime,
) -> None:
    """Score a stored batch: the events that rules listen to, and fit where traits changed.

    ``contacts`` is the batch ingestion just folded the events into (no
    re-read); score and stage changes are written through it. Call it before
    the flow runner, in the same transaction.
    """
    session.info.setdefault(_CHANGES, {})[workspace_id] = {}
    model = active_model(session, workspace_id)
    inputs = model.fit_inputs
    refit_all = bool(inputs - {"trait", "consent"})
    events: dict[str, list[ScoredEvent]] = {}
    refit: set[str] = set(contact_ids) if refit_all else set()
    for record, cid in zip(records, contact_ids, strict=True):
        if model.rules_for(record.type, record.event):
            events.setdefault(cid, []).append(record)
        elif inputs and not refit_all and _touches_fit(record, inputs):
            refit.add(cid)
    if not events and not refit:
        return
    ids = sorted(events.keys() | refit)
    states = contacts.contacts(ids)
    _visit(
        session,
        workspace_id,
        model,
        contacts,
        [(states[cid], events.get(cid, ()), cid in refit) for cid in ids if cid in states],
        now,
        hand_to_flows=True,
    )


def _touches_fit(record: Any, inputs: frozenset[str]) -> bool:
    return bool(
        ("trait" in inputs and getattr(record, "traits", None))
        or ("consent" in inputs and getattr(record, "consent", None))
    )


def take_score_changes(session: Session, workspace_id: str) -> dict[str, int]:
    """The scores (before the change) of contacts whose lead score the current batch changed.

    The flow runner takes them once, to enrol ``score_above`` flows whose
    threshold the new score crossed.
    """
    changes: dict[str, dict[str, int]] = session.info.get(_CHANGES, {})
    return changes.pop(workspace_id, {})


# -- reading and re-checking -----------------------------------------------------------------
def refresh_score(
    session: Session, workspace_id: str, contact_id: str, now: datetime, *, dry_run: bool = False
) -> bool:
    """Bring a contact's score to ``now`` (decay, fit rules); returns whether anything changed.

    ``dry_run`` says whether it would, without writing (for a read-only transaction).
    """
    contact = get_contact(session, workspace_id, contact_id)
    batch = ContactBatch.reader(session, workspace_id, now)
    model = active_model(session, workspace_id)
    states = batch.contacts([contact.id])
    return _visit(
        session,
        workspace_id,
        model,
        batch,
        [(states[contact.id], (), True)],
        now,
        dry_run=dry_run,
    )


def recheck_scores(
    session: Session, now: datetime, *, workspace_id: str | None = None, limit: int = 1000
) -> int:
    """Re-score up to ``limit`` contacts whose ``check_at`` is due; returns how many.

    Run it periodically (``jornada score recheck``): it writes decay at least
    daily and sees a score fall below a threshold within a minute of the
    moment it does.
    """
    query = select(LeadScore.workspace_id, LeadScore.contact_id).where(LeadScore.check_at <= now)
    if workspace_id is not None:
        query = query.where(LeadScore.workspace_id == workspace_id)
    due: dict[str, list[str]] = {}
    for ws, cid in session.execute(query.order_by(LeadScore.check_at).limit(limit)):
        due.setdefault(ws, []).append(cid)
    for ws, ids in due.items():
        batch = ContactBatch.reader(session, ws, now)
        states = batch.contacts(ids)
        gone = [cid for cid in ids if cid not in states or states[cid].merged_into_id]
        if gone:
            session.execute(
                update(LeadScore)
                .where(LeadScore.workspace_id == ws, LeadScore.contact_id.in_(gone))
                .values(check_at=None)
            )
        live = [(states[cid], (), True) for cid in ids if cid not in gone]
        _visit(session, ws, active_model(session, ws), batch, live, now, always_write=True)
    return sum(len(ids) for ids in due.values())


def score_view(
    session: Session, workspace_id: str, contact_id: str, *, limit: int = 50
) -> dict[str, Any]:
    """The contact's score, the thresholds it reached and its reasons, newest first."""
    contact = get_contact(session, workspace_id, contact_id)
    model = active_model(session, workspace_id)
    row = session.get(LeadScore, (workspace_id, contact.id))
    reasons = session.scalars(
        select(LeadScoreReason)
        .where(
            LeadScoreReason.workspace_id == workspace_id,
            LeadScoreReason.contact_id == contact.id,
        )
        .order_by(LeadScoreReason.at.desc(), LeadScoreReason.id.desc())
        .limit(limit)
    ).all()
    fit = sum((row.state.get("fit") or {}).values()) if row else 0
    engagement = row.engagement if row else 0
    ahead = [t for t in model.thresholds if t.score > contact.score]
    return {
        "contact_id": contact.id,
        "score": contact.score,
        "fit": fit,
        "engagement": engagement,
        "adjustments": contact.score - fit - engagement,
        "model_version": model.version,
        "model": model.document.name,
        "stage": contact.stage,
        "as_of": row.as_of if row else None,
        "thresholds": [_threshold(t) for t in model.reached(contact.score)],
        "next_threshold": _threshold(ahead[0]) if ahead else None,
        "reasons": [
            {"points": r.points, "reason": r.reason, "rule": r.rule, "at": r.at} for r in reasons
        ],
    }


def _threshold(threshold: Any) -> dict[str, Any]:
    return {"name": threshold.name, "score": threshold.score, "stage": threshold.stage}


# -- writing -------------------------------------------------------------------------------
def _load_states(session: Session, workspace_id: str, ids: Sequence[str]) -> dict[str, ScoreState]:
    bulk = Bulk(session.get_bind().dialect.name)
    found: dict[str, ScoreState] = {}
    columns = ("contact_id", "model_version", "total", "engagement", "state", "as_of")
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = bulk.select_in(
            session.connection(), "lead_scores", columns, workspace_id, "contact_id", chunk
        )
        for cid, model_version, total, engagement, data, as_of in rows:
            found[cid] = ScoreState.from_json(
                bulk.read_json(data),
                model_version=model_version,
                engagement=engagement,
                total=total,
                as_of=bulk.read_time(as_of),
            )
    return found


def _visit(
    session: Session,
    workspace_id: str,
    model: ScoringModel,
    batch: ContactBatch,
    work: Sequence[tuple[ContactState, Sequence[ScoredEvent], bool]],
    now: datetime,
    *,
    hand_to_flows: bool = False,
    dry_run: bool = False,
    always_write: bool = False,
) -> bool:
    """Score each (contact, events, refit) and write what changed; whether anything did."""
    if not work:
        return False
    ids = [contact.id for contact, _, _ in work]
    stored = _load_states(session, workspace_id, ids)
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    reasons: list[tuple[Any, ...]] = []
    emitted: list[tuple[Any, ...]] = []
    before: dict[str, int] = {}
    bulk = Bulk(session.get_bind().dialect.name)
    for contact, events, refit in work:
        known = contact.id in stored
        state = stored[contact.id] if known else ScoreState(model.version)
        outcome = score(model, state, contact, events, now, refit=refit)
        if not outcome.dirty and not (known and always_write):
            continue  # nothing new to remember about this contact
        if dry_run:
            return True
        check = next_check(model, state, now)
        row = _row(bulk, workspace_id, contact.id, state, check)
        if known:
            updates.append((*row[2:], workspace_id, contact.id))
        else:
            inserts.append(row)
        reasons += [
            (workspace_id, contact.id, bulk.time(r.at), r.points, r.reason[:300], r.rule[:64])
            for r in outcome.reasons
        ]
        if outcome.after != outcome.before or outcome.stage:
            before[contact.id] = outcome.before
            change_contact(
                contact, now=now, score_delta=outcome.after - outcome.before, stage=outcome.stage
            )
        emitted += [_event(bulk, workspace_id, contact, outcome, c, now) for c in outcome.crossings]
    if dry_run:
        return False
    conn = session.connection()
    bulk.insert(conn, "lead_scores", _SCORE_COLUMNS, inserts)
    if updates:
        assignments = ", ".join(f"{c} = {bulk.mark}" for c in _SCORE_COLUMNS[2:])
        conn.exec_driver_sql(
            f"UPDATE lead_scores SET {assignments} "
            f"WHERE workspace_id = {bulk.mark} AND contact_id = {bulk.mark}",
            updates,
        )
    bulk.insert(
        conn,
        "lead_score_reasons",
        ("workspace_id", "contact_id", "at", "points", "reason", "rule"),
        reasons,
    )
    bulk.insert(conn, "events", EVENT_COLUMNS, emitted)
    if before:
        batch.flush(session.get_bind().dialect.name)
    if hand_to_flows:
        session.info.setdefault(_CHANGES, {})[workspace_id] = before
    return bool(inserts or updates)


def _row(
    bulk: Bulk, workspace_id: str, contact_id: str, state: ScoreState, check: datetime | None
) -> tuple[Any, ...]:
    return (
        workspace_id,
        contact_id,
        state.model_version,
        state.total,
        state.engagement,
        bulk.json(state.to_json()),
        bulk.time(state.as_of),
        bulk.time(check),
    )


def _event(
    bulk: Bulk,
    workspace_id: str,
    contact: ContactState,
    outcome: Outcome,
    crossing: Any,
    now: datetime,
) -> tuple[Any, ...]:
    """A ``Score Changed`` event of the contact for one threshold crossing."""
    properties = {
        "score": outcome.after,
        "previous": outcome.before,
        "threshold": crossing.threshold.name,
        "threshold_score": crossing.threshold.score,
        "direction": crossing.direction,
        "stage": outcome.stage if crossing.direction == "up" else None,
    }
    return (
        workspace_id,
        f"jornada-score-{new_id()}",
        contact.id,
        "track",
        SCORE_CHANGED,
        contact.user_id,
        None,
        bulk.time(now),
        bulk.time(now),
        bulk.json(properties),
        bulk.json({"source": "jornada.scoring"}),
    )


__all__ = [
    "DEFAULT_VERSION",
    "active_model",
    "install_model",
    "model_versions",
    "recheck_scores",
    "refresh_score",
    "score_events",
    "score_view",
    "take_score_changes",
]
