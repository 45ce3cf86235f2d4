"""Incremental segment membership: events re-evaluate only the segments that depend on them.

The segments kept current this way are the workspace's custom segments and the
built-ins a flow listens to (``Segment Entered`` / ``Segment Exited`` of that
key). For each contact an ingested batch touches, a segment is evaluated again
only when one of the contact's new events can change it (see
:func:`dependencies`); a change of membership is stored in ``segment_members``
and becomes a ``Segment Entered`` or ``Segment Exited`` event of the contact.

Time alone can change a membership ("no order in 30 days", "3 views in the
last 7 days"): each evaluation works out the next moment an answer can flip
(:func:`next_change`) and keeps, in ``segment_rechecks``, one row per contact
(key ``*``) due at the earliest such moment over every tracked segment. When it
is due, the scheduler evaluates that contact's tracked segments again, instead
of scanning every contact. An event evaluates only the segments it can change,
so it can only bring that moment forward; a moment that moved later costs at
most one re-check that finds nothing to change. Rows keyed by one segment are
the fill of a segment just saved (:func:`recheck_everyone`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jornada.audience.compile import (
    ContactLike,
    EventLike,
    fact_time,
    matching_events,
)
from jornada.audience.definition import (
    All,
    AnyOf,
    Compare,
    Condition,
    Consent,
    EventCondition,
    Not,
    SegmentDefinition,
    Stage,
    Tag,
    event_leaves,
)
from jornada.audience.judge import Judge, Timeline, judge
from jornada.audience.models import SegmentMember, SegmentRecheck
from jornada.db.bulk import Bulk
from jornada.events.record import EventRecord

SEGMENT_ENTERED = "Segment Entered"
SEGMENT_EXITED = "Segment Exited"
ANY = "*"  # depends on every event
EVERY = "*"  # the re-check key of a contact's earliest moment over every tracked segment
IDENTIFY = "identify"  # depends on traits and consent: identify calls and context traits
CACHE_SECONDS = 5.0  # how long the list of a workspace's tracked segments is reused
_ORDER_EVENTS = frozenset({"Order Completed", "Order Cancelled", "Order Refunded"})
_FACT_EVENTS: dict[str, frozenset[str]] = {
    "has_open_cart": frozenset(
        {"Product Added", "Product Removed", "Checkout Started", "Cart Viewed", *_ORDER_EVENTS}
    ),
    "open_boletos_count": frozenset({"Boleto Issued", "Boleto Paid", "Boleto Expired"}),
    "first_seen_at": frozenset({ANY}),
    "last_seen_at": frozenset({ANY}),
    "days_since_last_seen": frozenset({ANY}),
    "score": frozenset({ANY}),
}
RECHECK_MARGIN = timedelta(seconds=1)  # past the boundary, where the answer has flipped


@dataclass(frozen=True)
class Tracked:
    """A segment kept current: its resolved condition and what can change it."""

    key: str
    name: str
    condition: Condition
    depends: frozenset[str]
    leaves: tuple[EventCondition, ...]  # its event conditions: what it reads of the log
    judge: Judge  # in or out, and the next change (what to_predicate and next_change say)

    def touched_by(self, names: Iterable[str]) -> bool:
        return ANY in self.depends or not self.depends.isdisjoint(names)


def dependencies(condition: Condition) -> frozenset[str]:
    """The event names (or ``*``, ``identify``) whose arrival can change the condition's answer."""
    match condition:
        case All(items) | AnyOf(items):
            return frozenset().union(*(dependencies(c) for c in items))
        case Not(item):
            return dependencies(item)
        case EventCondition(event=name):
            return frozenset({name})
        case Compare(subject="trait"):
            return frozenset({IDENTIFY})
        case Consent():
            return frozenset({IDENTIFY})
        case Compare(name=fact):
            return _FACT_EVENTS.get(fact, _ORDER_EVENTS)
        case Tag() | Stage():
            return frozenset({ANY})  # flows and people change them: look every time
    return frozenset({ANY})


def record_names(record: EventRecord) -> set[str]:
    """What an event is, for :meth:`Tracked.touched_by`."""
    names = {record.event or record.type, record.type}
    if record.traits or record.consent:
        names.add(IDENTIFY)
    return names


def track(definition: SegmentDefinition, condition: Condition) -> Tracked:
    """A segment to keep current; ``condition`` is its definition's, references resolved."""
    return Tracked(
        definition.key,
        definition.name,
        condition,
        dependencies(condition),
        tuple(event_leaves(condition)),
        judge(condition),
    )


# -- the next moment an answer can flip, pure ------------------------------------------------
def next_change(
    condition: Condition, contact: ContactLike, now: datetime, events: Sequence[EventLike]
) -> datetime | None:
    """The first moment from ``now`` on at which time alone may change the answer (plus a
    margin, so that the re-check sees it changed); None: never."""
    # a boundary at now itself still flips just after it (windows include their edge)
    moments = [m for m in _boundaries(condition, contact, now, events) if m >= now]
    return min(moments) + RECHECK_MARGIN if moments else None


def _boundaries(
    condition: Condition, contact: ContactLike, now: datetime, events: Sequence[EventLike]
) -> Iterable[datetime]:
    match condition:
        case All(items) | AnyOf(items):
            for item in items:
                yield from _boundaries(item, contact, now, events)
        case Not(item):
            yield from _boundaries(item, contact, now, events)
        case Compare(subject="fact", name=name) if name.startswith("days_since_"):
            moment = fact_time(name, contact)
            values = condition.value if isinstance(condition.value, tuple) else (condition.value,)
            if moment is not None and not isinstance(condition.value, bool):
                for days in values:
                    yield moment + timedelta(days=float(days))
        case EventCondition():
            yield from _event_boundaries(condition, now, events)


def _event_boundaries(
    leaf: EventCondition, now: datetime, events: Sequence[EventLike]
) -> Iterable[datetime]:
    later = [e for e in events if e.event == leaf.event and _aware(e.timestamp, now) > now]
    for event in later:  # an event dated in the future starts counting then
        yield _aware(event.timestamp, now)
    if leaf.within is not None:
        for event in matching_events(leaf, events, now):
            yield _aware(event.timestamp, now) + leaf.within
    if leaf.measure in ("first", "last") and isinstance(leaf.value, timedelta):
        for event in matching_events(leaf, events, now):
            yield _aware(event.timestamp, now) + leaf.value


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=now.tzinfo)


# -- evaluating a batch -------------------------------------------------------------------------
@dataclass(frozen=True)
class Group:
    """Segments evaluated together, and what evaluating them reads, worked out once."""

    segments: tuple[Tracked, ...]
    keys: frozenset[str]
    names: tuple[str, ...]  # the event names their event conditions read
    span: timedelta | None  # the widest window, when every event condition has one
    properties: bool  # whether a condition reads the events' properties

    @classmethod
    def of(cls, segments: Iterable[Tracked]) -> Group:
        chosen = tuple(segments)
        leaves = [leaf for s in chosen for leaf in s.leaves]
        windows = [leaf.within for leaf in leaves if leaf.within is not None]
        return cls(
            chosen,
            frozenset(s.key for s in chosen),
            tuple(sorted({leaf.event for leaf in leaves})),
            max(windows) if windows and len(windows) == len(leaves) else None,
            any(leaf.properties or leaf.measure == "sum" for leaf in leaves),
        )


@dataclass(frozen=True)
class Change:
    """A contact entered or left a segment: becomes a ``Segment Entered``/``Exited`` event."""

    contact_id: str
    key: str
    name: str
    entered: bool
    at: datetime

    def record(self, user_id: str | None) -> EventRecord:
        event = SEGMENT_ENTERED if self.entered else SEGMENT_EXITED
        stamp = self.at.isoformat()
        return EventRecord(
            message_id=f"jornada-segment:{self.key}:{self.contact_id}:{event}:{stamp}"[:128],
            type="track",
            timestamp=self.at,
            received_at=self.at,
            event=event,
            user_id=user_id,
            properties={"segment": self.key, "segment_name": self.name},
        )


def evaluate(
    session: Session,
    workspace_id: str,
    segments: Group | Sequence[Tracked],
    contacts: Mapping[str, ContactLike],
    now: datetime,
    *,
    complete: bool = False,
) -> list[Change]:
    """Evaluate ``segments`` for ``contacts`` (id → state), store changes and next re-checks.

    ``complete``: the segments are every tracked one, so the contact's re-check
    moment is set to what they say; otherwise it only ever moves earlier (the
    segments not evaluated may still need the moment stored).
    A handful of statements whatever the number of segments: the contacts' events,
    memberships and re-check read once, changes and re-checks written in bulk.
    """
    group = segments if isinstance(segments, Group) else Group.of(segments)
    if not group.segments or not contacts:
        return []
    conn = session.connection()
    bulk = Bulk(conn.dialect.name)
    ids = sorted(contacts)
    events, current, stored = _read(conn, bulk, workspace_id, group, ids, now)
    changes: list[Change] = []
    dues: dict[str, datetime] = {}
    timelines = {contact_id: Timeline(events.get(contact_id, []), now.tzinfo) for contact_id in ids}
    for segment in group.segments:
        verdict = segment.judge
        for contact_id in ids:
            inside, due = verdict(contacts[contact_id], now, timelines[contact_id])
            if inside != ((segment.key, contact_id) in current):
                changes.append(Change(contact_id, segment.key, segment.name, inside, now))
            if due is not None and (contact_id not in dues or due < dues[contact_id]):
                dues[contact_id] = due
    rechecks: dict[str, datetime | None] = {}
    for contact_id in ids:
        due = dues.get(contact_id)
        if due is not None:
            due += RECHECK_MARGIN
        if contact_id in stored:
            before = stored[contact_id]
            if not complete and (due is None or before < due):
                due = before  # a segment not evaluated now may need the earlier moment
            if due != before:
                rechecks[contact_id] = due
        elif due is not None:
            rechecks[contact_id] = due
    _write(conn, bulk, workspace_id, changes, rechecks)
    return changes


def _read(
    conn: Any,
    bulk: Bulk,
    workspace_id: str,
    group: Group,
    ids: Sequence[str],
    now: datetime,
) -> tuple[dict[str, list[EventLike]], set[tuple[str, str]], dict[str, datetime]]:
    """What evaluating the group's segments for these contacts reads, in one statement per 500 contacts:

    * the events their event conditions read, by contact (properties read and
      parsed only when a condition looks at them; none older than every window);
    * the (segment, contact) pairs stored as members;
    * each contact's re-check moment, where one is stored.

    Memberships and re-checks are keyed by contact first: one seek per contact
    rather than one per segment; other segments' rows are dropped here.
    """
    keys, names, properties = group.keys, group.names, group.properties
    since = None if group.span is None else now - group.span
    events: dict[str, list[EventLike]] = {}
    members: set[tuple[str, str]] = set()
    rechecks: dict[str, datetime] = {}
    m = bulk.mark
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        by_contact = f"workspace_id = {m} AND contact_id IN ({', '.join([m] * len(chunk))})"
        # events first: on PostgreSQL the first SELECT gives the columns their types
        sql, params = "", []
        if names:
            sql = (
                "SELECT 0, event, contact_id, timestamp, "
                f"{'properties' if properties else 'NULL'} FROM events WHERE {by_contact} "
                f"AND event IN ({', '.join([m] * len(names))})"
            )
            params = [workspace_id, *chunk, *names]
            if since is not None:
                sql += f" AND timestamp >= {m}"
                params.append(bulk.time(since))
            sql += " UNION ALL "
        sql += (
            f"SELECT 1, segment_key, contact_id, NULL, NULL FROM segment_members WHERE {by_contact} "
            "UNION ALL "
            f"SELECT 2, segment_key, contact_id, due_at, NULL FROM segment_rechecks "
            f"WHERE {by_contact} AND segment_key = {m}"
        )
        params += [workspace_id, *chunk, workspace_id, *chunk, EVERY]
        for kind, name, contact_id, at, data in bulk.rows(conn, sql, params):
            if kind == 0:
                moment = bulk.read_time(at)
                assert moment is not None
                seen = _Seen(name, moment, bulk.read_json(data) if properties else None)
                events.setdefault(contact_id, []).append(seen)
            elif kind == 1:
                if name in keys:
                    members.add((name, contact_id))
            else:
                due = bulk.read_time(at)
                assert due is not None
                rechecks[contact_id] = due
    return events, members, rechecks


@dataclass(frozen=True)
class _Seen:
    event: str | None
    timestamp: datetime
    properties: Mapping[str, Any] | None


def _write(
    conn: Any,
    bulk: Bulk,
    workspace_id: str,
    changes: Sequence[Change],
    rechecks: Mapping[str, datetime | None],
) -> None:
    """Store the changes and the contacts' new re-check moments (None: no moment left)."""
    bulk.insert(
        conn,
        "segment_members",
        ("workspace_id", "segment_key", "contact_id", "entered_at"),
        [(workspace_id, c.key, c.contact_id, bulk.time(c.at)) for c in changes if c.entered],
    )
    bulk.delete(
        conn,
        "segment_members",
        ("workspace_id", "segment_key", "contact_id"),
        [(workspace_id, c.key, c.contact_id) for c in changes if not c.entered],
    )
    bulk.delete(
        conn,
        "segment_rechecks",
        ("workspace_id", "segment_key", "contact_id"),
        [(workspace_id, EVERY, c) for c, due in sorted(rechecks.items()) if due is None],
    )
    moved = [
        (workspace_id, EVERY, contact_id, bulk.time(due))
        for contact_id, due in sorted(rechecks.items())
        if due is not None
    ]
    if moved:
        conn.exec_driver_sql(
            "INSERT INTO segment_rechecks (workspace_id, segment_key, contact_id, due_at) "
            f"VALUES ({bulk.mark}, {bulk.mark}, {bulk.mark}, {bulk.mark}) "
            "ON CONFLICT (workspace_id, segment_key, contact_id) "
            "DO UPDATE SET due_at = excluded.due_at",
            moved,
        )


# -- which segments, cached -------------------------------------------------------------------
class TrackedSegments(list[Tracked]):
    """A workspace's tracked segments, remembering which of them each kind of event touches."""

    def __init__(self, segments: Iterable[Tracked]) -> None:
        super().__init__(segments)
        self._touched: dict[frozenset[str], tuple[int, ...]] = {}
        self._groups: dict[tuple[int, ...], Group] = {}

    def touched(self, names: frozenset[str]) -> tuple[int, ...]:
        """The positions of the segments that events of these names can change."""
        found = self._touched.get(names)
        if found is None:
            found = tuple(i for i, s in enumerate(self) if s.touched_by(names))
            self._touched[names] = found
        return found

    def every(self) -> tuple[int, ...]:
        """The positions of every segment (to evaluate a contact's re-check)."""
        return tuple(range(len(self)))

    def group(self, positions: tuple[int, ...]) -> Group:
        """The segments at these positions (from :meth:`touched`), as a :class:`Group`."""
        found = self._groups.get(positions)
        if found is None:
            found = self._groups[positions] = Group.of(self[i] for i in positions)
        return found


_cache: dict[tuple[int, str], tuple[float, TrackedSegments]] = {}


def cached(
    key: tuple[int, str], build: Callable[[], list[Tracked]], *, max_age: float = CACHE_SECONDS
) -> TrackedSegments:
    """The tracked segments of a workspace, rebuilt at most every ``max_age`` seconds
    (``key``: the engine's identity and the workspace)."""
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < max_age:
        return hit[1]
    segments = TrackedSegments(build())
    _cache[key] = (time.monotonic(), segments)
    return segments


def clear_cache() -> None:
    """Forget the tracked segments (tests, or right after saving a segment)."""
    _cache.clear()


def recheck_everyone(
    session: Session, workspace_id: str, keys: Iterable[str], now: datetime
) -> None:
    """Make every live contact's membership of these segments due for a re-check at ``now``.

    How a segment just saved (or edited) fills: the scheduler's passes evaluate
    the contacts a thousand at a time, and each change becomes an event as usual.
    One ``INSERT … SELECT`` per segment, whatever the number of contacts.
    """
    conn = session.connection()
    bulk = Bulk(conn.dialect.name)
    m = bulk.mark
    for key in sorted(set(keys)):
        conn.exec_driver_sql(
            "INSERT INTO segment_rechecks (workspace_id, segment_key, contact_id, due_at) "
            f"SELECT workspace_id, {m}, id, {m} FROM contacts "
            f"WHERE workspace_id = {m} AND merged_into_id IS NULL "
            "ON CONFLICT (workspace_id, segment_key, contact_id) "
            "DO UPDATE SET due_at = excluded.due_at",
            (key, bulk.time(now), workspace_id),
        )


def forget_segment(session: Session, workspace_id: str, key: str) -> None:
    """Drop a deleted segment's stored members and re-checks (no exit events: it is gone)."""
    for model in (SegmentMember, SegmentRecheck):
        session.execute(
            delete(model).where(model.workspace_id == workspace_id, model.segment_key == key)
        )


def forget_rechecks(session: Session, workspace_id: str, key: str, ids: Iterable[str]) -> None:
    """Drop the re-checks of these contacts for ``key`` (taken: evaluated now, or not at all)."""
    chosen = sorted(ids)
    for start in range(0, len(chosen), 500):
        session.execute(
            delete(SegmentRecheck).where(
                SegmentRecheck.workspace_id == workspace_id,
                SegmentRecheck.segment_key == key,
                SegmentRecheck.contact_id.in_(chosen[start : start + 500]),
            )
        )


def due_rechecks(
    session: Session, now: datetime, *, limit: int = 1000
) -> dict[str, dict[str, set[str]]]:
    """The re-checks due, oldest first: workspace → segment key → contact ids."""
    rows = list(
        session.execute(
            select(
                SegmentRecheck.workspace_id, SegmentRecheck.segment_key, SegmentRecheck.contact_id
            )
            .where(SegmentRecheck.due_at <= now)
            .order_by(SegmentRecheck.due_at)
            .limit(limit)
        )
    )
    out: dict[str, dict[str, set[str]]] = {}
    for workspace_id, key, contact_id in rows:
        out.setdefault(workspace_id, {}).setdefault(key, set()).add(contact_id)
    return out
