"""The segment language: a segment is a named condition over a contact's current profile.

A definition is a small JSON/YAML document::

    key: inactive-30d
    name: Inactive for 30 days
    description: Customers whose last order is more than 30 days old
    where:
      all:
        - {fact: orders_count, gte: 1}
        - {fact: days_since_last_order, gt: 30}

``where`` is a subset of the flows' condition language (see ``jornada.flows.conditions``)::

    {"all": [c, …]}  {"any": [c, …]}  {"not": c}
    {"trait": "lead_type", "eq": "b2b"}       a contact trait (a top-level key)
    {"fact": "total_spent", "gte": "300.00"}  a commerce fact (see FACTS)
    {"tag": "vip"}  {"stage": "Customer"}  {"consent": "email_marketing"}

Operators: eq, ne, gt, gte, lt, lte, in, exists; several in one leaf must all
hold.

Event conditions look at the contact's events (merged contacts' included) up
to ``now``, optionally only the last ``within`` (``30m``, ``24h``, ``7d``,
``2w``) and only those whose properties equal ``properties``::

    {"event": "Order Completed"}                               performed at least once
    {"not": {"event": "Order Completed", "within": "30d"}}     not performed in 30 days
    {"event": "Product Viewed", "within": "7d", "count": {"gte": 3}}
    {"event": "Order Completed", "within": "90d", "sum": {"property": "total", "gt": 300}}
    {"event": "Product Viewed", "properties": {"category": "casa"}}
    {"event": "Order Completed", "last": {"before": "30d"}}    last time more than 30 days ago
    {"event": "Order Completed", "first": {"after": "2026-01-01T00:00:00+00:00"}}

``count`` and ``sum`` take the comparison operators (eq, ne, gt, gte, lt, lte);
no matching event is a count and a sum of 0. ``sum`` adds the property's
numbers: JSON numbers and strings written as decimals (``"149.90"``); anything
else counts as nothing. ``first``/``last`` take ``before`` and/or ``after``, a
time with offset or a duration meaning "that long before now"; without any
matching event they are false.

``{"segment": "inactive-30d"}`` is membership of another segment, resolved
by key (built-in or the workspace's) when the segment is computed.

It is parsed once, at load time, into the frozen tree below; an error
names the path of the offending part (``where.all[1].gt``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jornada.errors import InvalidInput

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]
OPERATORS: tuple[Op, ...] = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "exists")
ORDERING: frozenset[str] = frozenset({"gt", "gte", "lt", "lte"})
Scalar = str | int | float | bool

#: Each fact and the kind of value it holds; money is compared in exact cents.
FactKind = Literal["count", "money", "time", "days", "flag"]
FACTS: dict[str, FactKind] = {
    "orders_count": "count",
    "total_spent": "money",
    "average_order_value": "money",  # total_spent / orders_count; missing without orders
    "first_order_at": "time",
    "last_order_at": "time",
    "first_seen_at": "time",
    "last_seen_at": "time",
    "score": "count",
    "days_since_first_order": "days",  # elapsed days, fractional; missing without orders
    "days_since_last_order": "days",
    "days_since_last_seen": "days",
    "has_open_cart": "flag",
    "open_boletos_count": "count",
}
_TRAIT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WORD = re.compile(r"^[A-Za-z0-9_ -]{1,64}$")


class SegmentDefinitionError(InvalidInput):
    """A segment definition that does not follow the grammar; ``field`` is the path."""

    code = "invalid_segment"


# -- the parsed tree -----------------------------------------------------------------------
@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Compare:
    """``op`` applied to a trait or fact; ``value`` is already in the subject's own unit.

    Traits: str, float or bool (``exists``: bool; ``in``: a tuple of those).
    Facts: int cents for money, an aware datetime for times, a number for counts and days,
    a bool for flags.
    """

    subject: Literal["trait", "fact"]
    name: str
    op: Op
    value: Any


@dataclass(frozen=True)
class Tag:
    tag: str


@dataclass(frozen=True)
class Stage:
    stage: str


@dataclass(frozen=True)
class Consent:
    purpose: str


@dataclass(frozen=True)
class EventCondition:
    """A measure of the contact's events named ``event`` compared with ``value``.

    ``measure`` is count, sum (of ``property``), first or last (the time of the
    first or last matching event). ``within`` keeps the events of that window
    ending at ``now``; ``properties`` are equalities the events' properties meet
    (with the same typed comparison as traits). Times compare with ``value``,
    a datetime or a duration before ``now``; counts with an int, sums with a float.
    """

    event: str
    measure: Literal["count", "sum", "first", "last"]
    op: Op
    value: Any
    within: timedelta | None = None
    properties: tuple[tuple[str, Scalar], ...] = ()
    property: str | None = None


@dataclass(frozen=True)
class SegmentRef:
    """Membership of another segment, by key; replaced by its condition before compiling."""

    key: str


Condition = All | AnyOf | Not | Compare | Tag | Stage | Consent | EventCondition | SegmentRef
_NODES = (All, AnyOf, Not, Compare, Tag, Stage, Consent, EventCondition, SegmentRef)
_DURATION = re.compile(r"^(\d{1,6})(m|h|d|w)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MEASURE_OPS: tuple[Op, ...] = ("eq", "ne", "gt", "gte", "lt", "lte")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


# -- parsing -------------------------------------------------------------------------------
def parse(where: Any, path: str = "where") -> Condition:
    """The tree of a raw condition; :class:`SegmentDefinitionError` names the path of a mistake."""
    if isinstance(where, _NODES):
        return where
    if not isinstance(where, Mapping):
        raise _error(path, f"a condition is an object, not {where!r}")
    for key, node in (("all", All), ("any", AnyOf)):
        if key in where:
            _only(where, {key}, path)
            items = where[key]
            if not isinstance(items, list) or not items:
                raise _error(f"{path}.{key}", "must be a non-empty list of conditions")
            return node(tuple(parse(c, f"{path}.{key}[{i}]") for i, c in enumerate(items)))
    if "not" in where:
        _only(where, {"not"}, path)
        return Not(parse(where["not"], f"{path}.not"))
    for key, word in (("tag", Tag), ("stage", Stage), ("consent", Consent)):
        if key in where:
            _only(where, {key}, path)
            value = where[key]
            if not isinstance(value, str) or not _WORD.match(value):
                raise _error(
                    f"{path}.{key}", f"must be a name (letters, digits, _ or -), not {value!r}"
                )
            return word(value)
    for subject in ("trait", "fact"):
        if subject in where:
            return _compare(where, subject, path)
    if "event" in where:
        return _event(where, path)
    if "segment" in where:
        _only(where, {"segment"}, path)
        key = where["segment"]
        if not isinstance(key, str) or not _KEY.match(key):
            raise _error(f"{path}.segment", f"must be a segment key (a-z, 0-9, -), not {key!r}")
        return SegmentRef(key)
    raise _error(
        path,
        "a condition starts with all, any, not, trait, fact, tag, stage, consent, event or segment",
    )


def _event(where: Mapping[str, Any], path: str) -> Condition:
    """``{"event": NAME, within?, properties?, count | sum | first | last}``."""
    _only(where, {"event", "within", "properties", "count", "sum", "first", "last"}, path)
    name = where["event"]
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise _error(f"{path}.event", f"must be an event name, not {name!r}")
    within = None
    if "within" in where:
        within = _duration(where["within"], f"{path}.within")
        if within is None:
            raise _error(
                f"{path}.within", f"a duration such as 30m, 24h, 7d or 2w, not {where['within']!r}"
            )
    properties = _properties(where.get("properties", {}), f"{path}.properties")
    measures = [m for m in ("count", "sum", "first", "last") if m in where]
    if len(measures) > 1:
        raise _error(path, f"one measure per condition, not {', '.join(measures)}")

    def leaf(measure: Any, op: Op, value: Any, prop: str | None = None) -> EventCondition:
        return EventCondition(name, measure, op, value, within, properties, prop)

    if not measures:
        return leaf("count", "gte", 1)
    measure = measures[0]
    at = f"{path}.{measure}"
    spec = where[measure]
    if not isinstance(spec, Mapping):
        raise _error(at, "must be an object, e.g. {gte: 3}")
    if measure in ("first", "last"):
        _only(spec, {"before", "after"}, at)
        leaves = []
        bounds: tuple[tuple[str, Op], ...] = (("before", "lt"), ("after", "gt"))
        for word, op in bounds:
            if word in spec:
                moment = _datetime(spec[word])
                value: Any = moment if moment is not None else _duration(spec[word], f"{at}.{word}")
                if value is None:
                    raise _error(
                        f"{at}.{word}",
                        f"a time with offset or a duration such as 30d, not {spec[word]!r}",
                    )
                leaves.append(leaf(measure, op, value))
        if not leaves:
            raise _error(at, "add before or after")
        return leaves[0] if len(leaves) == 1 else All(tuple(leaves))
    allowed = {*_MEASURE_OPS} | ({"property"} if measure == "sum" else set())
    _only(spec, allowed, at)
    prop = None
    if measure == "sum":
        prop = spec.get("property")
        if not isinstance(prop, str) or not _TRAIT_NAME.match(prop):
            raise _error(f"{at}.property", f"the property to add up, not {prop!r}")
    ops = [op for op in _MEASURE_OPS if op in spec]
    if not ops:
        raise _error(at, f"add an operator ({', '.join(_MEASURE_OPS)}), e.g. gte: 3")
    conditions: list[Condition] = []
    for op in ops:
        number = _decimal(spec[op])
        if number is None or (measure == "count" and number != number.to_integral_value()):
            kind = "a whole number" if measure == "count" else "a number"
            raise _error(f"{at}.{op}", f"{measure} compares with {kind}, not {spec[op]!r}")
        value = int(number) if measure == "count" else float(number)
        conditions.append(leaf(measure, op, value, prop))
    return conditions[0] if len(conditions) == 1 else All(tuple(conditions))


def _duration(raw: Any, at: str) -> timedelta | None:
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if match is None:
        return None
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _properties(raw: Any, path: str) -> tuple[tuple[str, Scalar], ...]:
    if not isinstance(raw, Mapping):
        raise _error(path, "must be an object of property: value")
    out: list[tuple[str, Scalar]] = []
    for key, value in sorted(raw.items()):
        if not isinstance(key, str) or not _TRAIT_NAME.match(key):
            raise _error(f"{path}.{key}", "a property name is letters, digits, _ or -")
        if isinstance(value, bool | str):
            out.append((key, value))
        elif isinstance(value, int | float):
            out.append((key, float(value)))
        else:
            raise _error(f"{path}.{key}", f"equals a string, number or true/false, not {value!r}")
    return tuple(out)


def event_leaves(condition: Condition) -> Iterator[EventCondition]:
    """The event conditions inside ``condition``, in order."""
    match condition:
        case All(items) | AnyOf(items):
            for item in items:
                yield from event_leaves(item)
        case Not(item):
            yield from event_leaves(item)
        case EventCondition():
            yield condition


def uses_events(condition: Condition) -> bool:
    """Whether the condition reads the contact's events (its predicate then needs them)."""
    return next(event_leaves(condition), None) is not None


def references(condition: Condition) -> frozenset[str]:
    """The keys of the segments ``condition`` refers to directly."""
    match condition:
        case All(items) | AnyOf(items):
            return frozenset().union(*(references(c) for c in items))
        case Not(item):
            return references(item)
        case SegmentRef(key):
            return frozenset({key})
    return frozenset()


def resolve(
    condition: Condition, lookup: Callable[[str], Condition], path: tuple[str, ...] = ()
) -> Condition:
    """``condition`` with every segment reference replaced by that segment's own condition.

    ``lookup`` gives a segment's condition by key (raising when there is none); a
    segment that refers back to itself, directly or not, is an error naming the loop.
    """
    match condition:
        case All(items):
            return All(tuple(resolve(c, lookup, path) for c in items))
        case AnyOf(items):
            return AnyOf(tuple(resolve(c, lookup, path) for c in items))
        case Not(item):
            return Not(resolve(item, lookup, path))
        case SegmentRef(key):
            if key in path:
                loop = " -> ".join((*path, key))
                raise SegmentDefinitionError(f"segments refer to each other: {loop}", field="where")
            return resolve(lookup(key), lookup, (*path, key))
    return condition


def _compare(where: Mapping[str, Any], subject: Literal["trait", "fact"], path: str) -> Condition:
    _only(where, {subject, *OPERATORS}, path)
    name = where[subject]
    if subject == "trait" and (not isinstance(name, str) or not _TRAIT_NAME.match(name)):
        raise _error(f"{path}.trait", f"a trait name is letters, digits, _ or -, not {name!r}")
    if subject == "fact" and name not in FACTS:
        raise _error(f"{path}.fact", f"unknown fact {name!r}; use one of {', '.join(FACTS)}")
    ops = [op for op in OPERATORS if op in where]
    if not ops:
        raise _error(path, f"add an operator ({', '.join(OPERATORS)}), e.g. eq: …")
    leaves: list[Condition] = []
    for op in ops:
        at = f"{path}.{op}"
        raw = where[op]
        if op == "exists":
            if not isinstance(raw, bool):
                raise _error(at, "exists takes true or false")
            value: Any = raw
        elif op == "in":
            if not isinstance(raw, list) or not raw:
                raise _error(at, "in takes a non-empty list")
            value = tuple(_value(subject, name, "eq", v, f"{at}[{i}]") for i, v in enumerate(raw))
        else:
            value = _value(subject, name, op, raw, at)
        leaves.append(Compare(subject, name, op, value))
    return leaves[0] if len(leaves) == 1 else All(tuple(leaves))


def _value(subject: str, name: str, op: str, raw: Any, at: str) -> Any:
    """The literal in the subject's unit, or an error saying what was expected."""
    if subject == "trait":
        if isinstance(raw, bool):
            if op in ORDERING:
                raise _error(at, f"{op} compares numbers, not true/false")
            return raw
        if isinstance(raw, int | float):
            return float(raw)
        if isinstance(raw, str):
            if op in ORDERING:
                raise _error(at, f"{op} compares numbers; give a number, not {raw!r}")
            return raw
        raise _error(at, f"a trait compares with a string, number or true/false, not {raw!r}")
    kind = FACTS[name]
    if kind == "flag":
        if not isinstance(raw, bool) or op in ORDERING:
            raise _error(at, f"{name} is true or false; use eq, ne or in with true/false")
        return raw
    if kind == "time":
        moment = _datetime(raw)
        if moment is None:
            raise _error(at, f"{name} compares with an ISO 8601 time with offset, not {raw!r}")
        return moment
    number = _decimal(raw)
    if number is None:
        raise _error(at, f"{name} compares with a number, not {raw!r}")
    if kind == "money":
        cents = (number * 100).quantize(Decimal(1))
        if cents != number * 100:
            raise _error(at, f"{name} is money: at most 2 decimals, not {raw!r}")
        return int(cents)
    return int(number) if number == number.to_integral_value() else float(number)


def _decimal(raw: Any) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        number = Decimal(str(raw))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _datetime(raw: Any) -> datetime | None:
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else None


def _only(where: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = set(where) - allowed
    if unknown:
        raise _error(path, f"unknown or misplaced key(s) {', '.join(sorted(map(str, unknown)))}")


def _error(path: str, message: str) -> SegmentDefinitionError:
    return SegmentDefinitionError(f"{path}: {message}", field=path)


# -- the document --------------------------------------------------------------------------
class SegmentDefinition(BaseModel):
    """A segment: a slug key, a name for people, and the condition its members meet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    where: dict[str, Any]

    @field_validator("where")
    @classmethod
    def _check_where(cls, where: dict[str, Any]) -> dict[str, Any]:
        parse(where)  # SegmentDefinitionError is not a ValueError: it leaves pydantic as is
        return where

    @property
    def condition(self) -> Condition:
        """The parsed tree of ``where``."""
        return parse(self.where)


def load_definition(document: Mapping[str, Any]) -> SegmentDefinition:
    """A definition from a parsed YAML/JSON document; any mistake is a :class:`SegmentDefinitionError`."""
    try:
        return SegmentDefinition.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "segment"
        raise SegmentDefinitionError(f"{field}: {first['msg']}", field=field) from exc
