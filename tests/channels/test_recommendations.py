"""Frequently bought together: the pure counting and ranking, the cached workspace tables, the emails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.channels.catalog import library_templates
from jornada.channels.models import Message
from jornada.channels.sandbox import send as sandbox_send
from jornada.channels.sandbox import uses_recommended, variables
from jornada.contacts import (
    Contact,
    co_occurrence,
    frequently_bought_together,
    recommended_for,
    related,
)
from jornada.contacts.recommendations import CACHE_TTL, RECHECK, product_ids
from jornada.db import Database
from jornada.events import Event
from jornada.flows import install, library_flows
from jornada.ingest import accept_messages
from jornada.outbox import OutboxItem
from jornada.scheduler import tick
from jornada.workspaces import Workspace
from tests.conftest import Shop, make_shop

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # Tuesday 10:00 in São Paulo
CONSENT = {"email_marketing": True}


def product(product_id: str, **details: Any) -> dict[str, Any]:
    return {"product_id": product_id, **details}


def basket(*ids: str) -> list[dict[str, Any]]:
    return [product(pid, name=f"Produto {pid}", price="10.00") for pid in ids]


# -- the pure core ---------------------------------------------------------------------------


def test_each_order_counts_once_per_pair_and_single_product_orders_add_nothing() -> None:
    """Two lines of one product count once; a one-product order adds no pair."""
    # given three orders: a pair with a repeated line, the same pair again, a lone product
    baskets = [
        [product("a"), product("b"), product("a")],
        [product("b"), product("a")],
        [product("c")],
        "not a basket",
        None,
    ]
    # when they are counted
    table = co_occurrence(baskets)
    # then the pair is counted per order, both ways, and "c" pairs with nothing
    assert (table.count("a", "b"), table.count("b", "a")) == (2, 2)
    assert table.count("a", "a") == 0
    assert table.count("a", "c") == table.count("c", "a") == 0
    assert "c" not in table.pairs


def test_related_ranks_by_orders_shared_then_product_id_and_excludes_the_inputs() -> None:
    """Most shared orders first; ties by product_id; the given products never come back."""
    # given "a" bought twice with "x", once each with "m" and "k", and "a" with "b" once
    table = co_occurrence(
        [basket("a", "x"), basket("a", "x", "m"), basket("a", "k"), basket("a", "b")]
    )
    # when the products related to "a" and "b" are asked for, three at most
    found = related(table, ["a", "b"], limit=3)
    # then "x" leads, the tie between "k" and "m" goes to "k", and "a"/"b" are left out
    assert [p["product_id"] for p in found] == ["x", "k", "m"]
    assert related(table, ["a"], limit=1) == [table.products["x"]]
    assert related(table, ["a"], limit=0) == []
    assert related(table, ["unknown"]) == []


def test_scores_add_up_over_the_given_products() -> None:
    """A product bought with two of the given ones outranks one bought with one of them, twice."""
    # given "y" shares an order with "a" and one with "b", "z" shares two with "a"... and "w" one
    table = co_occurrence(
        [basket("a", "y"), basket("b", "y"), basket("a", "y"), basket("a", "z"), basket("b", "w")]
    )
    # when related to both "a" and "b"
    found = related(table, ["a", "b"])
    # then y (3 orders with a or b) comes before w and z (1 each), which tie on id
    assert [p["product_id"] for p in found] == ["y", "w", "z"]


def test_details_are_the_latest_seen_and_only_safe_ones_are_kept() -> None:
    """A newer name or price replaces the older; a missing or unusable one keeps what was known."""
    # given a product seen first with full details, then renamed with a bad price and link
    table = co_occurrence(
        [
            [
                product(
                    "a",
                    name="Caneca",
                    price="39.9",
                    url="https://loja.test/caneca",
                    image_url="https://cdn.test/caneca.jpg",
                ),
                product("b", name="Pires"),
            ],
            [
                product("a", name="Caneca Azul", price="abc", url="javascript:alert(1)"),
                product("b", price=12),
                {"name": "no id"},
                "not a product",
            ],
        ]
    )
    # when its details are read
    # then the new name is kept, the old price and link stay, and prices are decimal strings
    assert table.products["a"] == {
        "product_id": "a",
        "name": "Caneca Azul",
        "price": "39.90",
        "url": "https://loja.test/caneca",
        "image_url": "https://cdn.test/caneca.jpg",
    }
    assert table.products["b"] == {"product_id": "b", "name": "Pires", "price": "12.00"}


def test_named_only_skips_products_that_cannot_be_shown() -> None:
    """A product never seen with a name is not offered to a customer."""
    # given "a" bought with an unnamed "b" (twice) and a named "c" (once)
    table = co_occurrence(
        [
            [product("a"), product("b")],
            [product("a"), product("b")],
            [product("a"), product("c", name="Colher")],
        ]
    )
    # when related products are asked for, for display
    shown = related(table, ["a"], named_only=True)
    # then only the named one is offered, though the other ranks higher
    assert [p["product_id"] for p in related(table, ["a"])] == ["b", "c"]
    assert shown == [{"product_id": "c", "name": "Colher"}]


def test_product_ids_reads_orders_and_single_products() -> None:
    """An order's products, deduplicated in order; a view's product_id; nothing otherwise."""
    assert product_ids({"products": [product("a"), product("b"), product("a"), {}]}) == ["a", "b"]
    assert product_ids({"product_id": 7}) == ["7"]
    assert product_ids({"sku": "s1"}) == ["s1"]
    assert product_ids({"products": "oops", "product_id": True}) == []


_IDS = st.sampled_from([f"p{n}" for n in range(8)])
_BASKETS = st.lists(st.lists(_IDS.map(product), max_size=6), max_size=30)


@given(baskets=_BASKETS, seeds=st.lists(_IDS, max_size=3), limit=st.integers(0, 6))
def test_properties_of_the_table_and_the_ranking(
    baskets: list[list[dict[str, Any]]], seeds: list[str], limit: int
) -> None:
    """Counts are symmetric and match a brute-force count; results honour limit and exclusion."""
    table = co_occurrence(baskets)
    sets = [{p["product_id"] for p in b} for b in baskets]
    for a, b in combinations([f"p{n}" for n in range(8)], 2):
        expected = sum(1 for s in sets if a in s and b in s)
        assert table.count(a, b) == table.count(b, a) == expected
    found = related(table, seeds, limit)
    ids = [p["product_id"] for p in found]
    assert len(found) <= limit
    assert not set(ids) & set(seeds)
    assert len(set(ids)) == len(ids)
    scores = [sum(table.count(s, pid) for s in set(seeds)) for pid in ids]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)


# -- a workspace's orders --------------------------------------------------------------------


def order(user: str, order_id: str, at: datetime, *items: dict[str, Any]) -> dict[str, Any]:
    total = sum(float(i.get("price", 0)) * int(i.get("quantity", 1)) for i in items)
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": at.isoformat(),
        "properties": {
            "order_id": order_id,
            "total": f"{total:.2f}",
            "currency": "BRL",
            "products": list(items),
        },
    }


def customer(user: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "timestamp": (T0 - timedelta(days=60)).isoformat(),
        "traits": {"email": f"{user}@loja.com", "consent": CONSENT},
    }


def ingest(database: Database, shop: Shop, messages: list[dict[str, Any]], at: datetime) -> None:
    result = accept_messages(database, shop.ref, messages, received_at=at)
    assert result.rejected == []


CANECA = product("caneca", name="Caneca", price="39.90", url="https://loja.test/caneca")
PIRES = product("pires", name="Pires de Porcelana", price="24.50", url="https://loja.test/pires")
COLHER = product("colher", name="Colher de Chá", price="9.90")
BULE = product("bule", name="Bule Esmaltado", price="129.00")
ALIEN = product("alien", name="Produto de Outra Loja", price="1.00")


def neighbours_orders(at: datetime) -> list[dict[str, Any]]:
    """Caneca with Pires in two orders, with Colher in one; Bule alone."""
    return [
        order("bia", "o1", at, CANECA, PIRES),
        order("caio", "o2", at + timedelta(minutes=1), PIRES, {**CANECA, "quantity": 2}),
        order("duda", "o3", at + timedelta(minutes=2), CANECA, COLHER),
        order("edu", "o4", at + timedelta(minutes=3), BULE),
    ]


def test_a_workspace_only_ever_sees_its_own_orders(database: Database) -> None:
    """Another shop's orders of the same product never show up, however many there are."""
    # given our shop's orders, and another shop selling the same "caneca" with something else
    ours, theirs = make_shop(database), make_shop(database)
    ingest(database, ours, neighbours_orders(T0), T0)
    alien = [order(f"x{n}", f"x{n}", T0, CANECA, ALIEN) for n in range(5)]
    ingest(database, theirs, alien, T0)
    # when each shop asks what goes with "caneca"
    with database.read() as session:
        mine = frequently_bought_together(session, ours.ref.id, ["caneca"], now=T0)
        other = frequently_bought_together(session, theirs.ref.id, ["caneca"], now=T0)
    # then each sees only its own co-purchases, ranked, with their details
    assert [p["name"] for p in mine] == ["Pires de Porcelana", "Colher de Chá"]
    assert mine[0] == {
        "product_id": "pires",
        "name": "Pires de Porcelana",
        "price": "24.50",
        "url": "https://loja.test/pires",
    }
    assert [p["product_id"] for p in other] == ["alien"]


def test_new_orders_are_seen_once_the_order_count_is_checked_again(database: Database) -> None:
    """The cached table serves a burst of sends; a new order is seen at the next count check."""
    # given a shop whose "bule" was never bought with anything, already asked about
    shop = make_shop(database)
    ingest(database, shop, neighbours_orders(T0), T0)

    def ask(at: datetime) -> list[str]:
        with database.read() as session:
            found = frequently_bought_together(session, shop.ref.id, ["bule"], now=at)
        return [p["product_id"] for p in found]

    before = ask(T0)
    # when an order of bule with colher arrives, and the question is asked again
    ingest(database, shop, [order("bia", "o5", T0 + timedelta(hours=1), BULE, COLHER)], T0)
    # then within the recheck window the cached table answers, and after it the new pair is there
    assert before == ask(T0 + timedelta(seconds=1)) == []
    assert ask(T0 + RECHECK) == ["colher"]


def test_the_table_is_rebuilt_after_its_time_to_live(database: Database) -> None:
    """A change the order count cannot see (an order edited in place) shows after CACHE_TTL."""
    # given a shop already asked about "bule", then one of its orders rewritten to pair it
    shop = make_shop(database)
    ingest(database, shop, neighbours_orders(T0), T0)
    with database.read() as session:
        assert frequently_bought_together(session, shop.ref.id, ["bule"], now=T0) == []
    with database.write() as session:
        event = session.scalars(
            select(Event).where(Event.workspace_id == shop.ref.id, Event.event == "Order Completed")
        ).first()
        assert event is not None
        event.properties = {**event.properties, "products": [BULE, PIRES]}
    # when asked again, after a count check and after the time to live
    with database.read() as session:
        checked = frequently_bought_together(session, shop.ref.id, ["bule"], now=T0 + RECHECK)
        rebuilt = frequently_bought_together(session, shop.ref.id, ["bule"], now=T0 + CACHE_TTL)
    # then only the rebuilt table has the pair
    assert checked == []
    assert [p["product_id"] for p in rebuilt] == ["pires"]


def test_without_products_in_the_trigger_the_last_order_then_the_last_view_are_used(
    database: Database,
) -> None:
    """Trigger products first; else the contact's last order; else the last product viewed."""
    # given co-purchases, a buyer whose last order was a bule with a colher, and a mere viewer
    shop = make_shop(database)
    ingest(database, shop, neighbours_orders(T0), T0)
    ingest(
        database,
        shop,
        [
            order("gabi", "o9", T0 + timedelta(days=1), BULE, COLHER),
            order("gabi", "o10", T0 + timedelta(days=2), PIRES),
            {
                "type": "track",
                "userId": "hugo",
                "event": "Product Viewed",
                "timestamp": (T0 + timedelta(days=2)).isoformat(),
                "properties": {**COLHER, "url": "https://loja.test/colher"},
            },
        ],
        T0 + timedelta(days=2),
    )
    now = T0 + timedelta(days=3)
    with database.read() as session:
        contacts = {c.user_id: c for c in session.scalars(select(Contact))}
        by_trigger = recommended_for(session, contacts["gabi"], {"product_id": "colher"}, now=now)
        by_last_order = recommended_for(session, contacts["gabi"], {}, now=now)
        by_last_view = recommended_for(session, contacts["hugo"], {}, now=now)
        nothing = recommended_for(session, contacts["edu"], {"product_id": "bule"}, now=now)
    # then each falls back in turn (gabi's last order is the pires alone)
    assert [p["product_id"] for p in by_trigger] == ["bule", "caneca"]
    assert [p["product_id"] for p in by_last_order] == ["caneca"]
    assert [p["product_id"] for p in by_last_view] == ["bule", "caneca"]
    assert [p["product_id"] for p in nothing] == ["colher"]


# -- the messages ----------------------------------------------------------------------------


def test_recommended_is_computed_only_for_templates_that_use_it() -> None:
    """Only the cross-sell templates of the library name it (the WhatsApp one in its
    product list, not its body)."""
    users = sorted(k for k, t in library_templates().items() if uses_recommended(t))
    assert users == [
        "browse-abandonment",
        "post-purchase-cross-sell",
        "upsell-kits",
        "upsell-kits-whatsapp",
    ]


def test_upsell_email_lists_what_others_bought_with_the_viewed_product(
    database: Database,
) -> None:
    """Flow 8 end to end: orders in, a big spender views a caneca, the email lists its companions."""
    # given a shop with the upsell flow, its customers' orders, and another shop's orders
    shop, other = make_shop(database), make_shop(database)
    with database.write() as session:
        install(
            session,
            shop.ref.id,
            next(f for f in library_flows() if f.key == "upsell-cross-sell"),
            now=T0,
        )
    ingest(database, other, [order(f"x{n}", f"x{n}", T0, CANECA, ALIEN) for n in range(5)], T0)
    ingest(database, shop, [customer("ana"), *neighbours_orders(T0 - timedelta(days=5))], T0)
    ingest(
        database, shop, [order("ana", "a1", T0 - timedelta(days=3), {**BULE, "quantity": 3})], T0
    )
    # when ana comes back and views the caneca, and the worker runs
    viewed = {
        "type": "track",
        "userId": "ana",
        "event": "Product Viewed",
        "timestamp": T0.isoformat(),
        "properties": CANECA,
    }
    ingest(database, shop, [viewed], T0)
    tick(database, T0 + timedelta(minutes=1))
    # then her email lists the products bought with the caneca, most frequent first
    with database.read() as session:
        (email,) = session.scalars(select(Message).where(Message.workspace_id == shop.ref.id))
    assert email.template == "upsell-kits"
    assert "costumam ser comprados juntos" in email.body
    assert '<a href="https://loja.test/pires">Pires de Porcelana</a>: R$ 24,50' in email.body
    assert "Colher de Chá: R$ 9,90" in email.body
    assert email.body.index("Pires de Porcelana") < email.body.index("Colher de Chá")
    # and never the product she viewed, nor another shop's
    assert "Caneca" not in email.body
    assert "Outra Loja" not in email.body


@pytest.mark.parametrize("template_id", ["upsell-kits", "post-purchase-cross-sell"])
def test_nothing_to_recommend_falls_back_to_the_generic_copy(
    database: Database, template_id: str
) -> None:
    """No co-purchases: the message is still whole, with the generic text and link."""
    # given a shop whose only order is a single bule, and an outbox item triggered by it
    shop = make_shop(database)
    ingest(database, shop, [customer("ana"), order("ana", "a1", T0, BULE)], T0)
    out: list[dict[str, Any]] = []
    with database.write() as session:
        contact = session.scalars(select(Contact).where(Contact.user_id == "ana")).one()
        workspace = session.get(Workspace, shop.ref.id)
        assert workspace is not None
        workspace.url = "https://loja.test/"
        item = OutboxItem(
            workspace_id=shop.ref.id,
            contact_id=contact.id,
            kind="send",
            channel="email",
            payload={"template": template_id, "trigger": {"products": [BULE]}},
            idempotency_key="k1",
            due_at=T0,
            created_at=T0,
        )
        # when it is sent through the sandbox
        assert variables(item, contact, workspace, session=session, now=T0)["recommended"] == []
        sandbox_send(session, item, contact, workspace, T0, out)
    # then the body has the generic copy and the shop link, and nothing fell back
    (message,) = out
    assert "<ul>" not in message["body"]
    assert 'href="https://loja.test/' in message["body"]
    assert item.status == "done"
    assert item.reason is None
