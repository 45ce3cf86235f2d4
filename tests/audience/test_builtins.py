"""The built-in segments on a small hand-made shop, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from jornada.audience import (
    BUILTINS,
    SegmentDefinitionError,
    builtin_segment,
    builtin_segments,
    load_definition,
    segment_members,
    segment_size,
    to_predicate,
)
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import NotFound
from jornada.ingest import accept_messages
from tests.audience.shop_data import EXPECTED, EXPECTED_CELLS, populate
from tests.conftest import NOW, Shop, make_shop


def test_builtins_have_the_keys_of_issue_5() -> None:
    """Every key the issue names, high-ticket resolved per workspace."""
    assert {d.key for d in BUILTINS} | {"high-ticket"} == set(EXPECTED)


def test_builtin_members_are_exact(database: Database, shop: Shop) -> None:
    """Each built-in and RFM cell holds exactly the hand-picked contacts, by SQL and predicate."""
    # given
    populate(database, shop)
    other = make_shop(database)  # another workspace with the same people never leaks in
    populate(database, other)
    with database.read() as session:
        everyone = list(session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id)))
        for definition in builtin_segments(session, shop.ref.id):
            # when
            members, cursor = segment_members(session, shop.ref.id, definition, NOW, limit=100)
            size = segment_size(session, shop.ref.id, definition, NOW)
            # then
            expected = {**EXPECTED, **EXPECTED_CELLS}[definition.key]
            assert {m.user_id for m in members} == expected, definition.key
            assert {m.workspace_id for m in members} <= {shop.ref.id}
            assert size == len(expected)
            assert cursor is None
            holds = to_predicate(definition.where)
            assert {c.user_id for c in everyone if holds(c, NOW)} == expected, definition.key


def test_high_ticket_takes_high_spend_or_high_average_order(database: Database) -> None:
    """Five orders of R$ 50 put ana above the spend percentile; one order of R$ 200 puts bia
    above the percentile of average order value, though not of spend."""
    # given: spends 250, 100, 120, 150, 200; average orders 50, 100, 120, 150, 200
    shop = make_shop(database)
    orders = [("ana", 50)] * 5 + [("caio", 100), ("davi", 120), ("edu", 150), ("bia", 200)]
    result = accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "timestamp": (NOW - timedelta(days=n + 1)).isoformat(),
                "properties": {"order_id": f"o{n}", "total": f"{total}.00"},
            }
            for n, (user, total) in enumerate(orders)
        ],
        received_at=NOW,
    )
    assert result.rejected == []
    with database.read() as session:
        # when
        definition = builtin_segment(session, shop.ref.id, "high-ticket")
        members, _ = segment_members(session, shop.ref.id, definition, NOW, limit=10)
    # then: the 80th percentiles (nearest rank) are 200 of spend and 150 of average order
    assert {m.user_id for m in members} == {"ana", "bia"}
    assert (definition.description or "").endswith("(now 200.00 and 150.00).")


def test_members_page_by_cursor(database: Database, shop: Shop) -> None:
    """Pages of one follow each other by contact id, without gaps or repeats."""
    # given
    populate(database, shop)
    with database.read() as session:
        definition = builtin_segment(session, shop.ref.id, "inactive-30d")
        # when
        first, cursor = segment_members(session, shop.ref.id, definition, NOW, limit=3)
        assert cursor is not None
        second, last = segment_members(
            session, shop.ref.id, definition, NOW, limit=3, cursor=cursor
        )
    # then
    ids = [c.id for c in first + second]
    assert ids == sorted(ids)
    assert len(ids) == 4
    assert last is None


def test_unknown_builtin_is_not_found(database: Database, shop: Shop) -> None:
    with database.read() as session, pytest.raises(NotFound) as caught:
        builtin_segment(session, shop.ref.id, "nope")
    assert caught.value.field == "key"


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ({"all": [{"tag": "vip"}, {"fact": "orders", "gt": 1}]}, "where.all[1].fact"),
        ({"any": [{"not": {"trait": "lead_type", "gt": "b2b"}}]}, "where.any[0].not.gt"),
        ({"fact": "total_spent", "gte": "10.001"}, "where.gte"),
        ({"fact": "last_order_at", "lt": "2026-01-01T00:00:00"}, "where.lt"),
        ({"trait": "cnpj"}, "where"),
        ({"performed": "Order Completed"}, "where"),
        ({"all": []}, "where.all"),
    ],
)
def test_a_bad_definition_names_the_path(where: dict[str, object], path: str) -> None:
    """Mistakes are refused when the definition is loaded, saying where."""
    with pytest.raises(SegmentDefinitionError) as caught:
        load_definition({"key": "bad", "name": "Bad", "where": where})
    assert caught.value.field == path
    assert str(caught.value).startswith(path)
