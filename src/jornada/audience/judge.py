"""Pure: a condition compiled once into a judge of one contact at ``now``.

A judge answers, in one pass, what :func:`~jornada.audience.compile.to_predicate`
(is the contact in?) and :func:`~jornada.audience.membership.next_change` (the first
moment from ``now`` on at which time alone may change that) answer separately.
Incremental membership asks both for every segment an event touches, for each
contact of a batch: this is its hot path. So the contact's events are indexed once
by name, in time order (:class:`Timeline`), and an event condition finds its window
by bisection instead of reading every event. Those two functions stay the reference
meaning; ``tests/audience/test_judge.py`` checks that the judge agrees with them.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from operator import attrgetter, itemgetter
from typing import Any

from jornada.audience.compile import (
    ContactLike,
    EventLike,
    _basic,
    _holds,
    _number,
    _typed_equal,
    fact_time,
)
from jornada.audience.definition import All, AnyOf, Compare, Condition, EventCondition, Not

Verdict = tuple[bool, datetime | None]


class Timeline:
    """One contact's events by name, each name's in time order (times made aware once).

    ``seen`` keeps, for this contact and moment, the verdict of each leaf already
    judged: segments often share a leaf ("viewed a product in 7 days"), judged once.
    """

    __slots__ = ("_by_name", "seen")

    def __init__(self, events: Sequence[EventLike], tz: tzinfo | None) -> None:
        self.seen: dict[Judge, Verdict] = {}
        by_name: dict[str | None, list[tuple[datetime, int, EventLike]]] = {}
        for position, event in enumerate(events):
            at = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=tz)
            by_name.setdefault(event.event, []).append((at, position, event))
        for rows in by_name.values():
            rows.sort(key=itemgetter(0))  # stable: equal times keep the order given
        self._by_name = {name: ([row[0] for row in rows], rows) for name, rows in by_name.items()}

    def named(self, name: str) -> tuple[list[datetime], list[tuple[datetime, int, EventLike]]]:
        """The times, and (time, position given, event) rows, of the events named ``name``."""
        return self._by_name.get(name, _NONE)


_NONE: tuple[list[datetime], list[tuple[datetime, int, EventLike]]] = ([], [])
Judge = Callable[[ContactLike, datetime, Timeline], Verdict]


def judge(condition: Condition) -> Judge:
    """The judge of ``condition`` (references resolved, as for every compilation).

    Equal leaves, in any segment, get the same judge, whose verdict a
    :class:`Timeline` keeps once given.
    """
    match condition:
        case All() | AnyOf() | Not():
            return _node(condition)
    found = _LEAVES.get(condition)
    if found is None:
        if len(_LEAVES) >= _LEAVES_KEPT:
            _LEAVES.clear()
        found = _LEAVES[condition] = _once(_leaf(condition))
    return found


_LEAVES: dict[Condition, Judge] = {}
_LEAVES_KEPT = 10_000


def _once(inner: Judge) -> Judge:
    def once(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
        verdict = timeline.seen.get(once)
        if verdict is None:
            verdict = timeline.seen[once] = inner(contact, now, timeline)
        return verdict

    return once


def _node(condition: Condition) -> Judge:
    match condition:
        case All(items):
            return _combine([judge(c) for c in items], all)
        case AnyOf(items):
            return _combine([judge(c) for c in items], any)
        case Not(item):
            inner = judge(item)

            def negated(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
                inside, due = inner(contact, now, timeline)
                return not inside, due

            return negated
    raise AssertionError(condition)


def _leaf(condition: Condition) -> Judge:
    match condition:
        case EventCondition():
            return _event(condition)
        case Compare(subject="fact", name=name) if name.startswith("days_since_"):
            return _days_since(condition)
        case Compare(subject="fact", name=name, op=op) if name in _COLUMNS and op in _OPS:
            return _fact(condition)
    return _profile(condition)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def _combine(parts: list[Judge], join: Callable[[list[bool]], bool]) -> Judge:
    def combined(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
        answers: list[bool] = []
        due: datetime | None = None
        for part in parts:  # every part: each one's next change counts, as in next_change
            inside, moment = part(contact, now, timeline)
            answers.append(inside)
            due = _earliest(due, moment)
        return join(answers), due

    return combined


def _profile(leaf: Condition) -> Judge:
    """A trait, fact, tag, stage or consent: time alone never changes it."""

    def profile(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
        return _holds(leaf, contact, now, None), None

    return profile


# facts always present that compare as a column does (what compile._fact_basic does for them)
_COLUMNS = {"orders_count": "orders_count", "total_spent": "total_spent_cents", "score": "score"}
_OPS = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _fact(leaf: Compare) -> Judge:
    """A count or money fact against a number: one attribute and one comparison."""
    test, expected, read = _OPS[leaf.op], leaf.value, attrgetter(_COLUMNS[leaf.name])

    def fact(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
        return bool(test(read(contact), expected)), None

    return fact


def _days_since(leaf: Compare) -> Judge:
    """``days_since_*``: flips when the elapsed days cross one of the leaf's values."""
    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
    spans = [] if isinstance(leaf.value, bool) else [timedelta(days=float(v)) for v in values]

    def days_since(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
        inside = _holds(leaf, contact, now, None)
        moment = fact_time(leaf.name, contact)
        if moment is None:
            return inside, None
        due = min((m for m in (moment + span for span in spans) if m >= now), default=None)
        return inside, due

    return days_since


def _event(leaf: EventCondition) -> Judge:
    name, within, measure, op, value = leaf.event, leaf.within, leaf.measure, leaf.op, leaf.value
    wanted = leaf.properties
    shift = value if measure in ("first", "last") and isinstance(value, timedelta) else None

    def matching(
        rows: list[tuple[datetime, int, EventLike]], lo: int, hi: int
    ) -> list[tuple[datetime, int, EventLike]]:
        chosen = rows[lo:hi]
        if not wanted:
            return chosen
        return [row for row in chosen if _has(row[2].properties, wanted)]

    def event(contact: ContactLike, now: datetime, timeline: Timeline) -> Verdict:
        times, rows = timeline.named(name)
        hi = bisect_right(times, now)  # events after now do not count yet
        lo = bisect_left(times, now - within) if within is not None else 0
        found = matching(rows, lo, hi)
        # the next change: the first event dated after now starts counting then; the
        # oldest match leaves the window; a first/last bound is crossed
        due = times[hi] if hi < len(times) else None
        if within is not None and found:
            due = _earliest(due, found[0][0] + within)
        if shift is not None:
            crossing = [at + shift for at, _, _ in found if at + shift >= now]
            due = _earliest(due, crossing[0] if crossing else None)
        if measure in ("first", "last"):
            if not found:
                return False, due
            moment = found[0][0] if measure == "first" else found[-1][0]
            bound = now - value if isinstance(value, timedelta) else value
            return _basic(moment, op, bound), due
        actual: float
        if measure == "count":
            actual = len(found)
        else:  # sum, in the order the events were given (as the predicate adds them)
            assert leaf.property is not None
            numbers = (
                _number((e.properties or {}).get(leaf.property))
                for _, _, e in sorted(found, key=lambda row: row[1])
            )
            actual = sum(n for n in numbers if n is not None)
        if op == "ne":
            return actual != value, due
        return _basic(actual, op, value), due

    return event


def _has(properties: Mapping[str, Any] | None, wanted: tuple[tuple[str, Any], ...]) -> bool:
    present = properties or {}
    return all(_typed_equal(present.get(k), v) for k, v in wanted)
