"""Property: a segment condition means the same as a predicate and as SQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.audience import to_predicate, to_sql
from jornada.contacts import Contact
from jornada.db import Database
from jornada.ids import new_id
from tests.conftest import NOW, make_shop

TRAIT_NAMES = ["lead_type", "cnpj", "age", "vip"]
TAGS = ["vip", "b2b", "atacado"]
STAGES = ["New", "Engaged", "Customer"]
# whole days hit the boundaries of days_since_* and of time literals exactly
MOMENTS = [NOW - timedelta(days=d) for d in (0, 1, 29, 30, 31, 60, 90, 120)]

moments = st.one_of(
    st.sampled_from(MOMENTS),
    st.integers(0, 200 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m)),
)
trait_values = st.one_of(
    st.sampled_from(["b2b", "b2c", "", "12.345.678/0001-90"]),
    st.integers(-3, 40),
    st.sampled_from([0.5, 2.25, 30.0, -1.5]),
    st.booleans(),
    st.none(),
    st.just(["nested", "list"]),
)


@st.composite
def contacts(draw: st.DrawFn) -> dict[str, Any]:
    orders = draw(st.integers(0, 3))
    seen = sorted(draw(st.lists(moments, min_size=2, max_size=2)))
    first_order = last_order = None
    if orders or draw(st.booleans()):  # a contact whose orders were all cancelled keeps times
        first_order, last_order = sorted(draw(st.lists(moments, min_size=2, max_size=2)))
        if orders == 1 and draw(st.booleans()):
            last_order = first_order
    consent = draw(
        st.dictionaries(
            st.sampled_from(["email_marketing", "whatsapp_marketing"]),
            st.builds(lambda g: {"granted": g, "source": "test"}, st.booleans()),
        )
    )
    return {
        "traits": draw(st.dictionaries(st.sampled_from(TRAIT_NAMES), trait_values, max_size=3)),
        "tags": draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=2)),
        "stage": draw(st.sampled_from(STAGES)),
        "consent": consent,
        "orders_count": orders,
        "total_spent_cents": draw(st.sampled_from([0, 5000, 10050, 30000]))
        * min(orders, 1)
        * orders,
        "first_order_at": first_order,
        "last_order_at": last_order,
        "first_seen_at": seen[0],
        "last_seen_at": seen[1],
        "score": draw(st.integers(-2, 40)),
        "open_cart": draw(
            st.sampled_from([None, {"items": [{"product_id": "p1"}], "value": "9.90"}])
        ),
        "open_boletos": draw(st.lists(st.just({"order_id": "b"}), max_size=2)),
    }


def _trait_leaf(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(TRAIT_NAMES))
    literal = draw(
        st.one_of(
            st.sampled_from(["b2b", "b2c", ""]),
            st.integers(-3, 40),
            st.sampled_from([0.5, 2.25, 30]),
            st.booleans(),
        )
    )
    if isinstance(literal, bool | str):
        op = draw(st.sampled_from(["eq", "ne", "in", "exists"]))
    else:
        op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]))
    if op == "exists":
        return {"trait": name, "exists": draw(st.booleans())}
    if op == "in":
        return {"trait": name, "in": [literal, draw(st.sampled_from(["b2c", 3, True]))]}
    return {"trait": name, op: literal}


FACT_LITERALS: dict[str, st.SearchStrategy[Any]] = {
    "orders_count": st.integers(0, 3),
    "score": st.sampled_from([0, 10, 20.5]),
    "open_boletos_count": st.integers(0, 2),
    "total_spent": st.sampled_from(["0", "50.00", 100.5, 300]),
    "average_order_value": st.sampled_from(["50.00", "100.50", 75, "150.25"]),
    "first_order_at": st.sampled_from(MOMENTS).map(datetime.isoformat),
    "last_order_at": st.sampled_from(MOMENTS).map(datetime.isoformat),
    "first_seen_at": st.sampled_from(MOMENTS).map(datetime.isoformat),
    "last_seen_at": st.sampled_from(MOMENTS).map(datetime.isoformat),
    "days_since_first_order": st.sampled_from([0, 1, 30, 45.5, 90]),
    "days_since_last_order": st.sampled_from([0, 1, 30, 45.5, 90]),
    "days_since_last_seen": st.sampled_from([0, 1, 30, 60]),
}


def _fact_leaf(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from([*FACT_LITERALS, "has_open_cart"]))
    if name == "has_open_cart":
        return {"fact": name, draw(st.sampled_from(["eq", "ne"])): draw(st.booleans())}
    op = draw(st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]))
    if op == "exists":
        return {"fact": name, "exists": draw(st.booleans())}
    literal = draw(FACT_LITERALS[name])
    if op == "in":
        return {"fact": name, "in": [literal, draw(FACT_LITERALS[name])]}
    return {"fact": name, op: literal}


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["trait", "fact", "fact", "tag", "stage", "consent"]))
    if kind == "trait":
        return _trait_leaf(draw)
    if kind == "fact":
        return _fact_leaf(draw)
    if kind == "tag":
        return {"tag": draw(st.sampled_from(TAGS))}
    if kind == "stage":
        return {"stage": draw(st.sampled_from(STAGES))}
    return {"consent": draw(st.sampled_from(["email_marketing", "whatsapp_marketing"]))}


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(lambda cs: {"all": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda cs: {"any": cs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)


def _row(workspace_id: str, fields: dict[str, Any]) -> Contact:
    return Contact(
        id=new_id(),
        workspace_id=workspace_id,
        user_id=None,
        email=None,
        phone=None,
        locale=None,
        timezone="America/Sao_Paulo",
        timezone_source="workspace",
        owner=None,
        merged_into_id=None,
        currency="BRL",
        last_product_viewed=None,
        web_session=None,
        last_engaged_at=None,
        flow_entries=None,
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    people=st.lists(contacts(), min_size=1, max_size=8),
    wheres=st.lists(conditions, min_size=1, max_size=4),
)
def test_predicate_and_sql_agree(
    database: Database, people: list[dict[str, Any]], wheres: list[dict[str, Any]]
) -> None:
    """For random contacts and conditions, the SQL members are exactly the predicate's members."""
    # given
    shop = make_shop(database)
    with database.write() as session:
        session.add_all(_row(shop.ref.id, p) for p in people)
    with database.read() as session:
        dialect = session.get_bind().dialect.name
        rows = list(session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id)))
        for where in wheres:
            # when
            by_sql = set(
                session.scalars(
                    select(Contact.id).where(
                        Contact.workspace_id == shop.ref.id, to_sql(where, NOW, dialect)
                    )
                )
            )
            holds = to_predicate(where)
            by_predicate = {c.id for c in rows if holds(c, NOW)}
            # then
            assert by_sql == by_predicate, where
