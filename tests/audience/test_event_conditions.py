"""Event conditions and segment references in the segment language.

The property test draws contacts with random event histories and random
conditions mixing event measures with profile facts, and checks that SQL (on
SQLite and PostgreSQL) and the one-contact predicate pick the same members.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.audience import (
    SegmentDefinitionError,
    load_definition,
    segment_members,
    to_predicate,
    to_sql,
)
from jornada.audience.definition import parse, resolve, uses_events
from jornada.contacts import Contact
from jornada.db import Database
from jornada.events.models import Event
from jornada.ids import new_id
from jornada.ingest import accept_messages
from tests.audience.test_compile_property import _row, contacts, leaves
from tests.conftest import NOW, make_shop

NAMES = ["Product Viewed", "Order Completed", "Cart Viewed"]
# whole days and hours hit window edges exactly; some events lie after NOW
OFFSETS = [timedelta(days=d) for d in (-1, 0, 1, 2, 7, 8, 30, 31, 90)] + [timedelta(hours=23)]
PROPERTY_VALUES = st.one_of(
    st.sampled_from(["casa", "moda", "149.70", "12", "-3.5", "1.2.3", "", "12.", "abc"]),
    st.sampled_from([0.5, 2.25, 100, -1, 12]),
    st.booleans(),
    st.none(),
)

events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(NAMES),
        "at": st.one_of(
            st.sampled_from(OFFSETS).map(lambda d: NOW - d),
            st.sampled_from(OFFSETS).map(lambda d: NOW - d),
            st.integers(0, 40 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m)),
        ),
        "properties": st.dictionaries(
            st.sampled_from(["category", "total"]), PROPERTY_VALUES, max_size=2
        ),
    }
)


@st.composite
def event_leaves(draw: st.DrawFn) -> dict[str, Any]:
    leaf: dict[str, Any] = {"event": draw(st.sampled_from(NAMES))}
    if draw(st.booleans()):
        leaf["within"] = draw(st.sampled_from(["1d", "7d", "30d", "2d", "8d", "90m"]))
    if draw(st.booleans()):
        leaf["properties"] = {
            "category": draw(st.sampled_from(["casa", "moda", 12, True, "149.70"]))
        }
    measure = draw(st.sampled_from(["none", "count", "sum", "first", "last"]))
    op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]))
    if measure == "count":
        leaf["count"] = {op: draw(st.integers(0, 3))}
    elif measure == "sum":
        leaf["sum"] = {"property": "total", op: draw(st.sampled_from([0, 12, 100.5, 161.7, 0.5]))}
    elif measure in ("first", "last"):
        bound = draw(
            st.one_of(
                st.sampled_from(["1d", "7d", "30d"]),
                st.sampled_from(OFFSETS).map(lambda d: (NOW - d).isoformat()),
            )
        )
        leaf[measure] = {draw(st.sampled_from(["before", "after"])): bound}
    return leaf


conditions = st.recursive(
    st.one_of(event_leaves(), event_leaves(), leaves()),
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=5,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    people=st.lists(st.tuples(contacts(), st.lists(events, max_size=6)), min_size=1, max_size=6),
    wheres=st.lists(conditions, min_size=1, max_size=4),
)
def test_event_conditions_agree_in_sql_and_predicate(
    database: Database,
    people: list[tuple[dict[str, Any], list[dict[str, Any]]]],
    wheres: list[dict[str, Any]],
) -> None:
    """For random histories and conditions, SQL members are exactly the predicate's members."""
    # given
    shop = make_shop(database)
    with database.write() as session:
        for n, (fields, history) in enumerate(people):
            row = _row(shop.ref.id, fields)
            session.add(row)
            for m, e in enumerate(history):
                session.add(
                    Event(
                        workspace_id=shop.ref.id,
                        message_id=f"m-{n}-{m}-{new_id()}",
                        contact_id=row.id,
                        type="track",
                        event=e["event"],
                        timestamp=e["at"],
                        received_at=NOW,
                        properties=e["properties"],
                    )
                )
    with database.read() as session:
        dialect = session.get_bind().dialect.name
        rows = list(session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id)))
        history_of = {
            c.id: list(
                session.scalars(
                    select(Event).where(Event.workspace_id == shop.ref.id, Event.contact_id == c.id)
                )
            )
            for c in rows
        }
        for where in wheres:
            # when
            holds = to_predicate(where)
            by_predicate = {c.id for c in rows if holds(c, NOW, history_of[c.id])}
            for workspace_id in (None, shop.ref.id):  # per contact, and grouped per workspace
                clause = to_sql(where, NOW, dialect, workspace_id=workspace_id)
                by_sql = set(
                    session.scalars(
                        select(Contact.id).where(Contact.workspace_id == shop.ref.id, clause)
                    )
                )
                # then
                assert by_sql == by_predicate, (where, workspace_id)


def test_viewed_three_times_in_a_week_without_ordering(database: Database) -> None:
    """The issue's example, through ingestion: 3 views in 7 days and no order."""
    # given
    shop = make_shop(database)

    def track(user: str, event: str, days_ago: float, **props: Any) -> dict[str, Any]:
        at = NOW - timedelta(days=days_ago)
        return {
            "type": "track",
            "userId": user,
            "event": event,
            "timestamp": at.isoformat(),
            "properties": props,
        }

    messages = [
        *(track("ana", "Product Viewed", d, product_id="p1") for d in (1, 2, 6)),
        *(track("bia", "Product Viewed", d, product_id="p1") for d in (1, 2, 6)),
        track("bia", "Order Completed", 3, order_id="o1", total="149.70"),
        *(track("caio", "Product Viewed", d, product_id="p1") for d in (1, 2, 9)),
    ]
    result = accept_messages(database, shop.ref, messages, received_at=NOW, trigger_flows=False)
    assert result.accepted == len(messages)
    definition = load_definition(
        {
            "key": "hesitant",
            "name": "Viewed 3 times, no order",
            "where": {
                "all": [
                    {"event": "Product Viewed", "within": "7d", "count": {"gte": 3}},
                    {"not": {"event": "Order Completed", "within": "7d"}},
                ]
            },
        }
    )
    # when
    with database.read() as session:
        members, _ = segment_members(session, shop.ref.id, definition, NOW)
    # then
    assert [m.user_id for m in members] == ["ana"]


def test_a_segment_may_be_made_of_another(database: Database) -> None:
    """{segment: inactive-30d} is that built-in's membership, combined with the rest."""
    # given
    shop = make_shop(database)
    old, recent = NOW - timedelta(days=45), NOW - timedelta(days=5)
    messages = [
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": at.isoformat(),
            "properties": {"order_id": f"o-{user}", "total": "99.90"},
        }
        for user, at in (("ana", old), ("bia", old), ("caio", recent))
    ]
    messages.append({"type": "identify", "userId": "bia", "traits": {"lead_type": "b2b"}})
    accept_messages(database, shop.ref, messages, received_at=NOW, trigger_flows=False)
    definition = load_definition(
        {
            "key": "inactive-b2c",
            "name": "Inactive, not B2B",
            "where": {
                "all": [{"segment": "inactive-30d"}, {"not": {"trait": "lead_type", "eq": "b2b"}}]
            },
        }
    )
    # when
    with database.read() as session:
        members, _ = segment_members(session, shop.ref.id, definition, NOW)
        # then
        assert [m.user_id for m in members] == ["ana"]
        unknown = load_definition({"key": "x", "name": "x", "where": {"segment": "nope"}})
        with pytest.raises(SegmentDefinitionError, match="no segment with key 'nope'"):
            segment_members(session, shop.ref.id, unknown, NOW)


def test_segments_referring_to_each_other_are_refused() -> None:
    """A loop of references is an error naming it, not a recursion."""
    # given
    definitions = {"a": parse({"segment": "b"}), "b": parse({"any": [{"segment": "a"}]})}
    # when / then
    with pytest.raises(SegmentDefinitionError, match="a -> b -> a"):
        resolve(definitions["a"], definitions.__getitem__, ("a",))


@pytest.mark.parametrize(
    ("where", "field", "reason"),
    [
        ({"event": ""}, "where.event", "event name"),
        ({"event": "X", "within": "7 days"}, "where.within", "duration"),
        ({"event": "X", "count": {"gte": 1.5}}, "where.count.gte", "whole number"),
        ({"event": "X", "count": {}}, "where.count", "add an operator"),
        (
            {"event": "X", "count": {"gte": 1}, "sum": {"property": "t", "gt": 1}},
            "where",
            "one measure",
        ),
        ({"event": "X", "sum": {"gt": 1}}, "where.sum.property", "property to add up"),
        ({"event": "X", "last": {"before": "yesterday"}}, "where.last.before", "duration"),
        ({"event": "X", "last": {}}, "where.last", "before or after"),
        ({"event": "X", "properties": {"a": [1]}}, "where.properties.a", "equals a string"),
        ({"event": "X", "when": "7d"}, "where", "unknown or misplaced key(s) when"),
        ({"segment": "Not A Key"}, "where.segment", "segment key"),
    ],
)
def test_bad_event_conditions_name_the_field(
    where: dict[str, Any], field: str, reason: str
) -> None:
    """Each mistake names its path and says why."""
    with pytest.raises(SegmentDefinitionError) as caught:
        parse(where)
    assert caught.value.field == field
    assert reason in caught.value.message


def test_a_predicate_with_event_conditions_needs_the_events() -> None:
    """Forgetting the events is an error, never a silent "no events"."""
    where = {"event": "Order Completed"}
    assert uses_events(parse({"not": where}))
    assert not uses_events(parse({"tag": "vip"}))
    contact = _row("w", {**_minimal_contact()})
    with pytest.raises(ValueError, match="pass the contact's events"):
        to_predicate(where)(contact, NOW)
    assert to_predicate(where)(contact, NOW, []) is False


def _minimal_contact() -> dict[str, Any]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "traits": {},
        "tags": [],
        "stage": "New",
        "consent": {},
        "orders_count": 0,
        "total_spent_cents": 0,
        "first_order_at": None,
        "last_order_at": None,
        "first_seen_at": at,
        "last_seen_at": at,
        "score": 0,
        "open_cart": None,
        "open_boletos": [],
    }
