"""Pure: one segment condition, compiled to a predicate on one contact and to SQL on ``contacts``.

Both compilations share one meaning, which the property test in
``tests/audience/test_compile_property.py`` checks on SQLite and PostgreSQL:

* A comparison with a missing value (a trait not set, an order time without
  orders) is false, except ``ne``, which is ``not eq`` and so true.
  ``exists: true`` means present and not null.
* A trait compares by the literal's type: a number only with a JSON number
  (as floats), a string only with a JSON string, true/false only with a JSON
  boolean. Strings and booleans take eq, ne and in; numbers every operator.
* Money is exact integer cents. ``average_order_value`` is compared as
  ``total_spent_cents op value * orders_count``, never divided.
* ``days_since_*`` is the elapsed time in (fractional) days: ``gt: 30`` is
  "the time is before ``now`` - 30 days".

* Event conditions count, add up or date the contact's events named so, with
  a time up to ``now`` (and from ``now - within``) and the given properties
  (compared like traits). The predicate reads the events it is given; SQL reads
  the ``events`` table. Sums are floating point.
* Segment references (``{"segment": key}``) are resolved before compiling
  (:func:`jornada.audience.definition.resolve`); compiling one is an error.

Every SQL leaf is a definite TRUE or FALSE, never NULL, so ``not`` is exact
under SQL's three-valued logic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from jornada.audience.definition import (
    FACTS,
    All,
    AnyOf,
    Compare,
    Condition,
    Consent,
    EventCondition,
    Not,
    SegmentDefinitionError,
    SegmentRef,
    Stage,
    Tag,
    parse,
)
from jornada.contacts import Contact
from jornada.events.models import Event

Dialect = Literal["sqlite", "postgresql"]
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
ORDER_FACTS = frozenset(
    {
        "average_order_value",
        "first_order_at",
        "last_order_at",
        "days_since_first_order",
        "days_since_last_order",
    }
)  # missing for a contact without orders
_FLIP = {"eq": "eq", "gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}


class ContactLike(Protocol):
    """What a predicate reads: a :class:`~jornada.contacts.Contact` row or a batch's ContactState."""

    @property
    def traits(self) -> Mapping[str, Any]: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def stage(self) -> str: ...
    @property
    def consent(self) -> Mapping[str, Any]: ...
    @property
    def orders_count(self) -> int: ...
    @property
    def total_spent_cents(self) -> int: ...
    @property
    def first_order_at(self) -> datetime | None: ...
    @property
    def last_order_at(self) -> datetime | None: ...
    @property
    def first_seen_at(self) -> datetime: ...
    @property
    def last_seen_at(self) -> datetime: ...
    @property
    def score(self) -> int: ...
    @property
    def open_cart(self) -> Mapping[str, Any] | None: ...
    @property
    def open_boletos(self) -> Sequence[Any]: ...


class EventLike(Protocol):
    """What an event condition reads: an :class:`~jornada.events.models.Event` row or a record."""

    @property
    def event(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def properties(self) -> Mapping[str, Any] | None: ...


class Predicate(Protocol):
    """Whether one contact is in the segment at ``now``; ``events``: the contact's, when the
    condition has event conditions (:func:`~jornada.audience.definition.uses_events`)."""

    def __call__(
        self, contact: ContactLike, now: datetime, events: Sequence[EventLike] | None = None
    ) -> bool: ...


def _basic(actual: Any, op: str, expected: Any) -> bool:
    if op == "eq":
        return bool(actual == expected)
    if op == "gt":
        return bool(actual > expected)
    if op == "gte":
        return bool(actual >= expected)
    if op == "lt":
        return bool(actual < expected)
    if op == "lte":
        return bool(actual <= expected)
    raise ValueError(f"not a basic operator: {op}")


# -- the predicate ---------------------------------------------------------------------------
def to_predicate(where: Condition | Mapping[str, Any]) -> Predicate:
    """A function telling whether one contact is in the segment at ``now``."""
    condition = parse(where)

    def holds(
        contact: ContactLike, now: datetime, events: Sequence[EventLike] | None = None
    ) -> bool:
        return _holds(condition, contact, now, events)

    return holds


def _holds(
    condition: Condition, contact: ContactLike, now: datetime, events: Sequence[EventLike] | None
) -> bool:
    match condition:
        case All(items):
            return all(_holds(c, contact, now, events) for c in items)
        case AnyOf(items):
            return any(_holds(c, contact, now, events) for c in items)
        case Not(item):
            return not _holds(item, contact, now, events)
        case EventCondition():
            if events is None:
                raise ValueError("this condition reads events: pass the contact's events")
            return _event_holds(condition, events, now)
        case SegmentRef(key):
            raise _unresolved(key)
        case Tag(tag):
            return tag in (contact.tags or ())
        case Stage(stage):
            return contact.stage == stage
        case Consent(purpose):
            entry = (contact.consent or {}).get(purpose)
            return isinstance(entry, Mapping) and entry.get("granted") is True
        case Compare():
            return _compare(condition, contact, now)
    raise AssertionError(condition)


def _compare(leaf: Compare, contact: ContactLike, now: datetime) -> bool:
    """The operator-independent part: exists, ne, in and missing values; then one basic test."""

    def present(expected: Any) -> bool:
        if leaf.subject == "trait":
            value = (contact.traits or {}).get(leaf.name)
            if isinstance(expected, bool):
                return isinstance(value, bool)
            if isinstance(expected, float):
                return isinstance(value, int | float) and not isinstance(value, bool)
            return isinstance(value, str)
        return _fact_present(leaf.name, contact)

    def basic(op: str, expected: Any) -> bool:
        if not present(expected):
            return False
        if leaf.subject == "trait":
            value = contact.traits[leaf.name]
            return _basic(float(value) if isinstance(expected, float) else value, op, expected)
        return _fact_basic(leaf.name, op, expected, contact, now)

    if leaf.op == "exists":
        if leaf.subject == "trait":
            here = (contact.traits or {}).get(leaf.name) is not None
        else:
            here = _fact_present(leaf.name, contact)
        return here is bool(leaf.value)
    if leaf.op == "in":
        return any(basic("eq", v) for v in leaf.value)
    if leaf.op == "ne":
        return not basic("eq", leaf.value)
    return basic(leaf.op, leaf.value)


def _fact_present(name: str, contact: ContactLike) -> bool:
    if name in ORDER_FACTS:
        return contact.orders_count > 0 and (
            name == "average_order_value" or fact_time(name, contact) is not None
        )
    return True


def fact_time(name: str, contact: ContactLike) -> datetime | None:
    column = {
        "days_since_first_order": "first_order_at",
        "days_since_last_order": "last_order_at",
        "days_since_last_seen": "last_seen_at",
    }
    value: datetime | None = getattr(contact, column.get(name, name))
    return value


def _fact_basic(name: str, op: str, expected: Any, contact: ContactLike, now: datetime) -> bool:
    kind = FACTS[name]
    if name == "average_order_value":
        return _basic(contact.total_spent_cents, op, expected * contact.orders_count)
    if kind == "days":
        moment = fact_time(name, contact)
        return moment is not None and _basic(moment, _FLIP[op], _days_ago(now, expected))
    if kind == "time":
        return _basic(fact_time(name, contact), op, expected)
    if name == "has_open_cart":
        return _basic(contact.open_cart is not None, op, expected)
    if name == "open_boletos_count":
        boletos = contact.open_boletos
        return _basic(len(boletos) if isinstance(boletos, list) else 0, op, expected)
    column = {"total_spent": "total_spent_cents"}.get(name, name)
    return _basic(getattr(contact, column), op, expected)


def _days_ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


def _unresolved(key: str) -> SegmentDefinitionError:
    return SegmentDefinitionError(
        f"the reference to segment {key!r} must be resolved before compiling", field="where"
    )


def _typed_equal(value: Any, expected: Any) -> bool:
    """A JSON value equals a literal of the same kind (as traits compare)."""
    if isinstance(expected, bool):
        return isinstance(value, bool) and value is expected
    if isinstance(expected, float):
        return isinstance(value, int | float) and not isinstance(value, bool) and value == expected
    return isinstance(value, str) and value == expected


def _number(value: Any) -> float | None:
    """A JSON number, or a string written as a decimal; else None (it adds nothing)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return float(value)
    return None


def matching_events(
    leaf: EventCondition, events: Sequence[EventLike], now: datetime
) -> Iterator[EventLike]:
    since = now - leaf.within if leaf.within is not None else None
    for event in events:
        if event.event != leaf.event:
            continue
        at = event.timestamp
        if at.tzinfo is None:  # an ORM row read back from SQLite: naive UTC
            at = at.replace(tzinfo=now.tzinfo)
        if at > now or (since is not None and at < since):
            continue
        properties = event.properties or {}
        if all(_typed_equal(properties.get(k), v) for k, v in leaf.properties):
            yield event


def _event_holds(leaf: EventCondition, events: Sequence[EventLike], now: datetime) -> bool:
    found = list(matching_events(leaf, events, now))
    if leaf.measure in ("first", "last"):
        if not found:
            return False
        times = [
            e.timestamp if e.timestamp.tzinfo else e.timestamp.replace(tzinfo=now.tzinfo)
            for e in found
        ]
        moment = min(times) if leaf.measure == "first" else max(times)
        bound = now - leaf.value if isinstance(leaf.value, timedelta) else leaf.value
        return _basic(moment, leaf.op, bound)
    if leaf.measure == "count":
        actual: float = len(found)
    else:
        assert leaf.property is not None
        numbers = (_number((e.properties or {}).get(leaf.property)) for e in found)
        actual = sum(n for n in numbers if n is not None)
    if leaf.op == "ne":
        return bool(actual != leaf.value)
    return _basic(actual, leaf.op, leaf.value)


# -- SQL -------------------------------------------------------------------------------------
def to_sql(
    where: Condition | Mapping[str, Any],
    now: datetime,
    dialect: str = "sqlite",
    *,
    workspace_id: str | None = None,
) -> ColumnElement[bool]:
    """A WHERE clause over ``contacts`` for SQLite or PostgreSQL (``dialect`` is the engine's name).

    With ``workspace_id`` (the contacts' workspace), event conditions read only
    that workspace's events through the (workspace, event, time) index: what a
    full recomputation wants. Without it they are matched on (workspace, contact).
    """
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"segments compile for sqlite or postgresql, not {dialect!r}")
    return _Sql(now, dialect, workspace_id).of(parse(where))


class _Sql:
    def __init__(self, now: datetime, dialect: str, workspace_id: str | None) -> None:
        self.now, self.dialect, self.workspace_id = now, dialect, workspace_id

    def of(self, condition: Condition) -> ColumnElement[bool]:
        now, dialect = self.now, self.dialect
        match condition:
            case All(items):
                return and_(*(self.of(c) for c in items))
            case AnyOf(items):
                return or_(*(self.of(c) for c in items))
            case Not(item):
                return not_(self.of(item))
            case Tag(tag):
                return _has_tag(tag, dialect)
            case Stage(stage):
                return Contact.stage == stage
            case Consent(purpose):
                return _json_is_true(Contact.consent, (purpose, "granted"), dialect)
            case Compare():
                return _compare_sql(condition, now, dialect)
            case EventCondition():
                return self.event(condition)
            case SegmentRef(key):
                raise _unresolved(key)
        raise AssertionError(condition)

    def event(self, leaf: EventCondition) -> ColumnElement[bool]:
        """The contacts whose matching events, grouped, pass the measure.

        Written as membership of a grouped subquery (not one subquery per contact)
        so that the database reads only the events of that name in the window.
        A contact without matching events has a count and a sum of 0: when 0
        passes, the members are everyone *but* the groups that fail.
        """
        now, dialect = self.now, self.dialect
        where = [Event.event == leaf.event, Event.timestamp <= now]
        if leaf.within is not None:
            where.append(Event.timestamp >= now - leaf.within)
        for key, expected in leaf.properties:
            where.append(_typed_equal_sql(Event.properties, key, expected, dialect))
        measure: Any
        if leaf.measure in ("first", "last"):
            measure = (func.min if leaf.measure == "first" else func.max)(Event.timestamp)
            bound = now - leaf.value if isinstance(leaf.value, timedelta) else leaf.value
            passes = _basic_sql(measure, leaf.op, bound)
            return self._in_groups(where, passes)
        if leaf.measure == "count":
            measure = func.count()
        else:
            assert leaf.property is not None
            measure = func.coalesce(
                func.sum(_number_sql(Event.properties, leaf.property, dialect)), 0.0
            )
        passes = (
            not_(_basic_sql(measure, "eq", leaf.value))
            if leaf.op == "ne"
            else _basic_sql(measure, leaf.op, leaf.value)
        )
        if _zero_passes(leaf):
            return not_(self._in_groups(where, not_(passes)))
        return self._in_groups(where, passes)

    def _in_groups(self, where: list[Any], having: ColumnElement[bool]) -> ColumnElement[bool]:
        if self.workspace_id is not None:
            # grouped by an expression, not the bare column: SQLite without statistics would
            # otherwise walk the (workspace, contact, time) index to get groups in order and
            # read every event of the workspace instead of the few of that name and window
            contact = func.coalesce(Event.contact_id, "")
            groups = (
                select(contact)
                .where(Event.workspace_id == self.workspace_id, *where)
                .group_by(contact)
                .having(having)
            )
            return Contact.id.in_(groups)
        correlated = (
            select(literal(1))
            .where(
                Event.workspace_id == Contact.workspace_id, Event.contact_id == Contact.id, *where
            )
            .group_by(Event.contact_id)
            .having(having)
        )
        return correlated.exists()


def _zero_passes(leaf: EventCondition) -> bool:
    """Whether a contact without any matching event passes a count or sum condition."""
    if leaf.measure in ("first", "last"):
        return False
    return leaf.value != 0 if leaf.op == "ne" else _basic(0, leaf.op, leaf.value)


def needs_events(where: Condition | Mapping[str, Any]) -> bool:
    """Whether every member must have matching events of some event condition of ``where``
    (an event condition that fails without events, alone or in an ``all``): its members
    are then best found from those events' groups rather than by reading every contact."""
    match parse(where):
        case EventCondition() as leaf:
            return not _zero_passes(leaf)
        case All(items):
            return any(needs_events(c) for c in items)
    return False


def _typed_equal_sql(column: Any, key: str, expected: Any, dialect: str) -> ColumnElement[bool]:
    kind = _json_type(column, (key,), dialect)
    present: ColumnElement[bool]
    if isinstance(expected, bool):
        present = kind.in_(("true", "false") if dialect == "sqlite" else ("boolean",))
    elif isinstance(expected, float):
        present = kind.in_(("integer", "real") if dialect == "sqlite" else ("number",))
    else:
        present = kind == ("text" if dialect == "sqlite" else "string")
    return and_(present, _json_basic_sql(column, key, "eq", expected, dialect))


def _number_sql(column: Any, key: str, dialect: str) -> ColumnElement[Any]:
    """The property as a float when it is a JSON number or a decimal string, else NULL."""
    kind = _json_type(column, (key,), dialect)
    text = _json_text(column, (key,), dialect)
    if dialect == "sqlite":
        # -?[0-9]+(\.[0-9]+)? in GLOB terms: only digits, '.' and '-'; '-' only first;
        # at most one '.'; starts with a digit or '-' and a digit; ends with a digit
        decimal = and_(
            not_(text.op("GLOB")("*[^0-9.-]*")),
            not_(text.op("GLOB")("?*-*")),
            not_(text.op("GLOB")("*.*.*")),
            or_(text.op("GLOB")("[0-9]*"), text.op("GLOB")("-[0-9]*")),
            text.op("GLOB")("*[0-9]"),
        )
        numeric = or_(kind.in_(("integer", "real")), and_(kind == "text", decimal))
    else:
        numeric = or_(
            kind == "number",
            and_(kind == "string", text.op("~")(r"^-?[0-9]+(\.[0-9]+)?$")),
        )
    return case((numeric, cast(text, Float)), else_=None)


def _has_tag(tag: str, dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        each = func.json_each(Contact.tags).table_valued("value")
        return select(literal(1)).select_from(each).where(each.c.value == tag).exists()
    contains: ColumnElement[bool] = type_coerce(Contact.tags, JSONB).contains([tag])
    return func.coalesce(contains, false())


def _sqlite_path(keys: Sequence[str]) -> str:
    return "$" + "".join(f'."{k}"' for k in keys)


def _json_type(column: Any, keys: Sequence[str], dialect: str) -> ColumnElement[str]:
    """The JSON type at ``keys``, '' when missing: sqlite says text/integer/real/true/false/null/…,
    PostgreSQL string/number/boolean/null/…"""
    if dialect == "sqlite":
        kind = func.json_type(column, _sqlite_path(keys)) if keys else func.json_type(column)
    else:
        kind = func.jsonb_typeof(func.jsonb_extract_path(column, *keys) if keys else column)
    return func.coalesce(kind, "")


def _json_text(column: Any, keys: Sequence[str], dialect: str) -> ColumnElement[Any]:
    """The scalar at ``keys``: a native SQL value on SQLite, text on PostgreSQL."""
    if dialect == "sqlite":
        return func.json_extract(column, _sqlite_path(keys))
    return func.jsonb_extract_path_text(column, *keys)


def _json_is_true(column: Any, keys: Sequence[str], dialect: str) -> ColumnElement[bool]:
    if dialect == "sqlite":
        return _json_type(column, keys, dialect) == "true"
    return and_(
        _json_type(column, keys, dialect) == "boolean",
        func.coalesce(_json_text(column, keys, dialect), "") == "true",
    )


def _compare_sql(leaf: Compare, now: datetime, dialect: str) -> ColumnElement[bool]:
    def present(expected: Any) -> ColumnElement[bool]:
        if leaf.subject == "trait":
            kind = _json_type(Contact.traits, (leaf.name,), dialect)
            if isinstance(expected, bool):
                return kind.in_(("true", "false") if dialect == "sqlite" else ("boolean",))
            if isinstance(expected, float):
                return kind.in_(("integer", "real") if dialect == "sqlite" else ("number",))
            return kind == ("text" if dialect == "sqlite" else "string")
        return _fact_present_sql(leaf.name)

    def basic(op: str, expected: Any) -> ColumnElement[bool]:
        if leaf.subject == "trait":
            test = _trait_basic_sql(leaf.name, op, expected, dialect)
        else:
            test = _fact_basic_sql(leaf.name, op, expected, now, dialect)
        return and_(present(expected), test)

    if leaf.op == "exists":
        here: ColumnElement[bool]
        if leaf.subject == "trait":
            here = _json_type(Contact.traits, (leaf.name,), dialect).not_in(("", "null"))
        else:
            here = _fact_present_sql(leaf.name)
        return here if leaf.value else not_(here)
    if leaf.op == "in":
        return or_(*(basic("eq", v) for v in leaf.value))
    if leaf.op == "ne":
        return not_(basic("eq", leaf.value))
    return basic(leaf.op, leaf.value)


def _trait_basic_sql(name: str, op: str, expected: Any, dialect: str) -> ColumnElement[bool]:
    return _json_basic_sql(Contact.traits, name, op, expected, dialect)


def _json_basic_sql(
    column: Any, name: str, op: str, expected: Any, dialect: str
) -> ColumnElement[bool]:
    keys = (name,)
    if isinstance(expected, bool):  # eq only: ordering is refused at load time
        if dialect == "sqlite":
            return _json_type(column, keys, dialect) == ("true" if expected else "false")
        return func.coalesce(_json_text(column, keys, dialect), "") == (
            "true" if expected else "false"
        )
    value: ColumnElement[Any] = _json_text(column, keys, dialect)
    if isinstance(expected, float) and dialect == "postgresql":
        # PostgreSQL may evaluate either side of AND first: cast only what is a number
        is_number = _json_type(column, keys, dialect) == "number"
        value = case((is_number, cast(value, Float)), else_=None)
    return _basic_sql(value, op, expected)


def _basic_sql(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op == "eq":
        result = left == right
    elif op == "gt":
        result = left > right
    elif op == "gte":
        result = left >= right
    elif op == "lt":
        result = left < right
    elif op == "lte":
        result = left <= right
    else:
        raise ValueError(f"not a basic operator: {op}")
    return result


def _fact_present_sql(name: str) -> ColumnElement[bool]:
    if name == "average_order_value":
        return Contact.orders_count > 0
    if name in ORDER_FACTS:
        column = Contact.first_order_at if "first" in name else Contact.last_order_at
        return and_(Contact.orders_count > 0, column.is_not(None))
    return true()


def _fact_basic_sql(
    name: str, op: str, expected: Any, now: datetime, dialect: str
) -> ColumnElement[bool]:
    if name == "average_order_value":
        return _basic_sql(Contact.total_spent_cents, op, Contact.orders_count * expected)
    if name == "days_since_first_order":
        return _basic_sql(Contact.first_order_at, _FLIP[op], _days_ago(now, expected))
    if name == "days_since_last_order":
        return _basic_sql(Contact.last_order_at, _FLIP[op], _days_ago(now, expected))
    if name == "days_since_last_seen":
        return _basic_sql(Contact.last_seen_at, _FLIP[op], _days_ago(now, expected))
    if name == "has_open_cart":  # a closed cart is SQL NULL (the partial index tests it)
        return Contact.open_cart.is_not(None) if expected else Contact.open_cart.is_(None)
    if name == "open_boletos_count":
        if dialect == "sqlite":
            count: ColumnElement[Any] = func.coalesce(
                func.json_array_length(Contact.open_boletos), 0
            )
        else:
            is_array = _json_type(Contact.open_boletos, (), dialect) == "array"
            count = case((is_array, func.jsonb_array_length(Contact.open_boletos)), else_=0)
        return _basic_sql(count, op, expected)
    column = {
        "orders_count": Contact.orders_count,
        "total_spent": Contact.total_spent_cents,
        "score": Contact.score,
        "first_order_at": Contact.first_order_at,
        "last_order_at": Contact.last_order_at,
        "first_seen_at": Contact.first_seen_at,
        "last_seen_at": Contact.last_seen_at,
    }[name]
    return _basic_sql(column, op, expected)
