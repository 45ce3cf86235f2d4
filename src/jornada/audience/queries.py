"""Segment membership computed in the database: always one workspace, never merged contacts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.orm import Session

from jornada.audience import membership
from jornada.audience.builtins import BUILTINS, HIGH_TICKET, HIGH_TICKET_PERCENTILE, high_ticket
from jornada.audience.compile import ContactLike, needs_events, to_sql
from jornada.audience.definition import (
    Condition,
    SegmentDefinition,
    SegmentDefinitionError,
    references,
    resolve,
)
from jornada.audience.membership import Change, Tracked, TrackedSegments, record_names, track
from jornada.audience.models import SegmentMember
from jornada.audience.rfm import RFM_PREFIX, rfm_segment, rfm_segments
from jornada.audience.store import SavedSegment, custom_segment, custom_segments, save_segment
from jornada.contacts import Contact
from jornada.contacts.queries import check_limit, decode_cursor, encode_cursor
from jornada.db.bulk import driver_rows
from jornada.errors import InvalidInput, NotFound
from jornada.events.record import EventRecord


def _lookup(session: Session, workspace_id: str) -> Callable[[str], Condition]:
    """Another segment's current condition by key, for references; a 400 naming it otherwise."""

    def lookup(key: str) -> Condition:
        try:
            return find_segment(session, workspace_id, key).condition
        except NotFound as exc:
            raise SegmentDefinitionError(
                f"where: no segment with key {key!r}", field="where"
            ) from exc

    return lookup


def resolved(session: Session, workspace_id: str, definition: SegmentDefinition) -> Condition:
    """The definition's condition with the segments it names replaced by their own conditions."""
    return resolve(definition.condition, _lookup(session, workspace_id), (definition.key,))


def _members_clause(
    session: Session, workspace_id: str, definition: SegmentDefinition, now: datetime
) -> ColumnElement[bool]:
    dialect = session.get_bind().dialect.name
    condition = resolved(session, workspace_id, definition)
    scope = Contact.workspace_id == workspace_id
    if dialect == "sqlite" and needs_events(condition):
        # SQLite, without statistics, would walk every contact of the workspace and look
        # each up in the event groups; hiding the workspace column from the index makes it
        # read the (few) groups and fetch those contacts by id instead
        scope = (Contact.workspace_id + "") == workspace_id
    return (
        scope
        & Contact.merged_into_id.is_(None)
        & to_sql(condition, now, dialect, workspace_id=workspace_id)
    )


def segment_members(
    session: Session,
    workspace_id: str,
    definition: SegmentDefinition,
    now: datetime,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Contact], str | None]:
    """Members ordered by contact id, ``limit`` at a time; the cursor returned fetches the next page."""
    check_limit(limit)
    query = select(Contact).where(_members_clause(session, workspace_id, definition, now))
    if cursor:
        values = decode_cursor(cursor)
        if len(values) != 1 or not isinstance(values[0], str):
            raise InvalidInput("cursor is not one this API returned", field="cursor")
        query = query.where(Contact.id > values[0])
    rows = list(session.scalars(query.order_by(Contact.id).limit(limit + 1)))
    next_cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def member_ids(
    session: Session, workspace_id: str, definition: SegmentDefinition, now: datetime
) -> set[str]:
    """The ids of every member at ``now``, in one query (a full recomputation of the segment)."""
    query = select(Contact.id).where(_members_clause(session, workspace_id, definition, now))
    # an id needs no conversion: the driver's own rows, without a Row object each
    return {contact_id for (contact_id,) in driver_rows(session.connection(), query)}


def segment_size(
    session: Session, workspace_id: str, definition: SegmentDefinition, now: datetime
) -> int:
    """How many contacts of the workspace are in the segment at ``now``."""
    query = select(func.count()).select_from(Contact.__table__)
    count = session.scalar(query.where(_members_clause(session, workspace_id, definition, now)))
    return int(count or 0)


def _customers(workspace_id: str) -> ColumnElement[bool]:
    return (
        (Contact.workspace_id == workspace_id)
        & Contact.merged_into_id.is_(None)
        & (Contact.orders_count > 0)
    )


def _rank(session: Session, workspace_id: str, percentile: int) -> int:
    """The nearest rank (1-based) of ``percentile`` among customers; 0 without any."""
    count = int(session.scalar(select(func.count()).where(_customers(workspace_id))) or 0)
    return -(-count * percentile // 100)  # ceil(count * p / 100)


def spend_percentile(session: Session, workspace_id: str, percentile: int) -> int:
    """The nearest-rank ``percentile`` of total spent (cents) among customers; 0 without any."""
    rank = _rank(session, workspace_id, percentile)
    if rank == 0:
        return 0
    value = session.scalar(
        select(Contact.total_spent_cents)
        .where(_customers(workspace_id))
        .order_by(Contact.total_spent_cents)
        .offset(rank - 1)
        .limit(1)
    )
    return int(value or 0)


def order_value_percentile(session: Session, workspace_id: str, percentile: int) -> int:
    """The nearest-rank ``percentile`` of average order value among customers, in cents
    rounded up (so that "above it" never takes in the customer at the rank); 0 without any."""
    rank = _rank(session, workspace_id, percentile)
    if rank == 0:
        return 0
    row = session.execute(
        select(Contact.total_spent_cents, Contact.orders_count)
        .where(_customers(workspace_id))
        .order_by(cast(Contact.total_spent_cents, Float) / Contact.orders_count)
        .offset(rank - 1)
        .limit(1)
    ).one()
    return -(-int(row[0]) // int(row[1]))


def builtin_segment(session: Session, workspace_id: str, key: str) -> SegmentDefinition:
    """A built-in segment by key, ``high-ticket`` and ``rfm-*`` resolved for this workspace; 404 otherwise."""
    if key.startswith(RFM_PREFIX):
        return rfm_segment(session, workspace_id, key)
    if key == HIGH_TICKET:
        return high_ticket(
            spend_percentile(session, workspace_id, HIGH_TICKET_PERCENTILE),
            order_value_percentile(session, workspace_id, HIGH_TICKET_PERCENTILE),
        )
    for definition in BUILTINS:
        if definition.key == key:
            return definition
    raise NotFound(f"no segment with key {key!r}", field="key")


def is_builtin(key: str) -> bool:
    """Whether ``key`` names a built-in segment (reserved: a workspace cannot save one)."""
    return (
        key == HIGH_TICKET
        or key.startswith(RFM_PREFIX)
        or any(definition.key == key for definition in BUILTINS)
    )


def find_segment(session: Session, workspace_id: str, key: str) -> SegmentDefinition:
    """A built-in or one of the workspace's current custom segments; 404 otherwise."""
    if is_builtin(key):
        return builtin_segment(session, workspace_id, key)
    saved = custom_segment(session, workspace_id, key)
    if saved is None:
        raise NotFound(f"no segment with key {key!r}", field="key")
    return saved.definition


def save_custom_segment(
    session: Session,
    workspace_id: str,
    document: Mapping[str, Any],
    *,
    now: datetime,
    fill: bool = True,
) -> SavedSegment:
    """Validate and store ``document`` as the next version of the workspace's segment.

    Every contact is then due for a re-check of it, and of the segments that refer
    to it: the scheduler fills the stored members (see :func:`membership.recheck_everyone`).
    ``fill=False`` leaves that to each contact's next event (a benchmark that times
    only the per-event work).
    """
    saved = save_segment(
        session,
        workspace_id,
        document,
        now=now,
        reserved=is_builtin,
        lookup=_lookup(session, workspace_id),
    )
    if fill:
        membership.recheck_everyone(
            session, workspace_id, _referring(session, workspace_id, saved.definition.key), now
        )
    return saved


def _referring(session: Session, workspace_id: str, key: str) -> set[str]:
    """``key`` and the custom segments that refer to it, directly or through others."""
    refers = {
        s.definition.key: references(s.definition.condition)
        for s in custom_segments(session, workspace_id)
    }
    found, grew = {key}, True
    while grew:
        more = {k for k, refs in refers.items() if refs & found} - found
        found |= more
        grew = bool(more)
    return found


def builtin_segments(session: Session, workspace_id: str) -> list[SegmentDefinition]:
    """Every built-in segment in catalogue order, then ``high-ticket``, then the RFM cells."""
    return [
        *BUILTINS,
        builtin_segment(session, workspace_id, HIGH_TICKET),
        *rfm_segments(session, workspace_id),
    ]


# -- incremental membership ----------------------------------------------------------------------
def tracked_segments(
    session: Session, workspace_id: str, listened: Callable[[], Iterable[str]] = tuple
) -> TrackedSegments:
    """The segments kept current: the workspace's own, and the built-ins flows listen to.

    ``listened`` gives the keys flows listen to; it is called only when the list
    is built. The list is cached for a few seconds per workspace (a newly saved
    segment or flow is taken into account within ``membership.CACHE_SECONDS``).
    A segment whose references are broken is not tracked until fixed.
    """

    def build() -> list[Tracked]:
        definitions = [s.definition for s in custom_segments(session, workspace_id)]
        for key in sorted(set(listened()) - {d.key for d in definitions}):
            try:
                definitions.append(find_segment(session, workspace_id, key))
            except NotFound:
                continue  # a flow listening to a segment that does not exist: nothing to track
        out = []
        for definition in definitions:
            try:
                out.append(track(definition, resolved(session, workspace_id, definition)))
            except SegmentDefinitionError:
                continue
        return out

    return membership.cached((id(session.get_bind().engine), workspace_id), build)


def keep_segments_current(
    session: Session,
    workspace_id: str,
    records: Sequence[EventRecord],
    contact_ids: Sequence[str],
    states: Mapping[str, ContactLike],
    now: datetime,
    listened: Callable[[], Iterable[str]] = tuple,
) -> list[Change]:
    """Re-evaluate, for the contacts of a batch, the tracked segments their events can change."""
    segments = tracked_segments(session, workspace_id, listened)
    if not segments:
        return []
    touched: dict[str, set[str]] = {}
    for record, contact_id in zip(records, contact_ids, strict=True):
        touched.setdefault(contact_id, set()).update(record_names(record))
    # contacts that need the same segments are evaluated together: a few queries per group
    groups: dict[tuple[int, ...], dict[str, ContactLike]] = {}
    for contact_id, names in touched.items():
        state = states.get(contact_id)
        if state is None or getattr(state, "merged_into_id", None) is not None:
            continue
        wanted = segments.touched(frozenset(names))
        if wanted:
            groups.setdefault(wanted, {})[contact_id] = state
    changes: list[Change] = []
    for wanted, contacts in groups.items():
        group = segments.group(wanted)
        complete = len(wanted) == len(segments)
        changes += membership.evaluate(
            session, workspace_id, group, contacts, now, complete=complete
        )
    return changes


def recheck_segments(
    session: Session,
    now: datetime,
    *,
    limit: int = 1000,
    listened: Callable[[str], Iterable[str]] = lambda workspace_id: (),
    lock: Callable[[str], None] = lambda workspace_id: None,
) -> dict[str, list[Change]]:
    """Evaluate the memberships whose re-check is due; the changes by workspace.

    A contact's own re-check (key ``*``) evaluates every tracked segment of its
    workspace (``listened``: the built-in keys a workspace's flows listen to); a
    re-check keyed by one segment (a segment being filled) evaluates that one.
    ``lock`` is called for each workspace, in id order, before it is evaluated
    (ingestion's lock: the two must not evaluate one contact at the same time).
    """
    out: dict[str, list[Change]] = {}
    due = membership.due_rechecks(session, now, limit=limit)
    for workspace_id in sorted(due):
        lock(workspace_id)
    for workspace_id, by_key in sorted(due.items()):
        for key, ids in sorted(by_key.items()):
            membership.forget_rechecks(session, workspace_id, key, ids)
            group: membership.Group | list[Tracked]
            if key == membership.EVERY:
                tracked = tracked_segments(session, workspace_id, partial(listened, workspace_id))
                group = tracked.group(tracked.every())
            else:
                try:
                    definition = find_segment(session, workspace_id, key)
                    group = [track(definition, resolved(session, workspace_id, definition))]
                except (NotFound, SegmentDefinitionError):
                    continue  # deleted or broken since: nothing to keep current
            changes = membership.evaluate(
                session,
                workspace_id,
                group,
                _live_contacts(session, workspace_id, ids),
                now,
                complete=key == membership.EVERY,
            )
            out.setdefault(workspace_id, []).extend(changes)
    return out


def _live_contacts(session: Session, workspace_id: str, ids: Iterable[str]) -> dict[str, Contact]:
    """These contacts by id, merged ones left out.

    Merged contacts are dropped here, not in SQL: with "merged_into_id IS NULL"
    SQLite walks an index of every live contact instead of seeking these ids.
    """
    return {
        c.id: c
        for c in session.scalars(
            select(Contact).where(Contact.workspace_id == workspace_id, Contact.id.in_(sorted(ids)))
        )
        if c.merged_into_id is None
    }


def stored_members(session: Session, workspace_id: str, key: str) -> set[str]:
    """The contact ids kept as members of a tracked segment (what its events said so far)."""
    return set(
        session.scalars(
            select(SegmentMember.contact_id).where(
                SegmentMember.workspace_id == workspace_id,
                SegmentMember.segment_key == key,
            )
        )
    )
