"""Contact profiles through the ingestion engine API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from jornada.contacts import ConsentRecord, Contact, ContactMerge, contact_events, get_contact
from jornada.contacts.queries import contact_view
from jornada.db import Database
from jornada.events import Event
from jornada.ingest import IngestResult, accept_messages
from tests.conftest import NOW, Shop


def send(database: Database, shop: Shop, *messages: dict[str, Any]) -> IngestResult:
    result = accept_messages(database, shop.ref, list(messages), received_at=NOW)
    assert result.rejected == [], result.rejected
    return result


def at(minutes: int) -> str:
    return (NOW - timedelta(days=1) + timedelta(minutes=minutes)).isoformat()


def contacts_of(database: Database, shop: Shop) -> list[Contact]:
    with database.read() as session:
        return list(
            session.scalars(
                select(Contact).where(
                    Contact.workspace_id == shop.ref.id, Contact.merged_into_id.is_(None)
                )
            )
        )


def only_contact(database: Database, shop: Shop) -> Contact:
    (contact,) = contacts_of(database, shop)
    return contact


def test_identify_attaches_anonymous_history(database: Database, shop: Shop) -> None:
    """Browsing as anonymous, then identifying: one contact holding all the events."""
    # given
    send(
        database,
        shop,
        {"type": "page", "anonymousId": "a1", "name": "Home", "timestamp": at(0)},
        {
            "type": "track",
            "anonymousId": "a1",
            "event": "Product Viewed",
            "timestamp": at(1),
            "properties": {"product_id": "p1", "name": "Cafeteira", "price": "349.90"},
        },
    )
    # when
    send(
        database,
        shop,
        {
            "type": "identify",
            "anonymousId": "a1",
            "userId": "u1",
            "timestamp": at(2),
            "traits": {"email": "joao@loja.com"},
        },
    )
    # then
    contact = only_contact(database, shop)
    assert contact.user_id == "u1"
    assert contact.email == "joao@loja.com"
    assert contact.last_product_viewed is not None
    assert contact.last_product_viewed["product_id"] == "p1"
    with database.read() as session:
        events, _ = contact_events(session, shop.ref.id, contact.id)
    assert [e.type for e in events] == ["identify", "track", "page"]
    assert contact.first_seen_at == datetime.fromisoformat(at(0))
    assert contact.last_seen_at == datetime.fromisoformat(at(2))


def test_link_of_two_known_contacts_merges_and_records_it(database: Database, shop: Shop) -> None:
    """An anonymous shopper with an order and a known customer turn out to be one person."""
    # given: two separate contacts, each with an order
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": at(0),
            "traits": {"email": "ana@loja.com", "first_name": "Ana"},
        },
        {
            "type": "track",
            "userId": "u1",
            "event": "Order Completed",
            "timestamp": at(1),
            "properties": {"order_id": "A", "total": "100.00"},
        },
        {
            "type": "track",
            "anonymousId": "anon-9",
            "event": "Order Completed",
            "timestamp": at(5),
            "properties": {"order_id": "B", "total": "50.25"},
        },
    )
    assert len(contacts_of(database, shop)) == 2
    with database.read() as session:
        anon_id = session.scalar(
            select(Event.contact_id).where(
                Event.workspace_id == shop.ref.id, Event.anonymous_id == "anon-9"
            )
        )
    # when: the anonymous device identifies as u1
    send(
        database,
        shop,
        {"type": "identify", "userId": "u1", "anonymousId": "anon-9", "timestamp": at(10)},
    )
    # then
    contact = only_contact(database, shop)
    assert contact.user_id == "u1"
    assert contact.orders_count == 2
    assert contact.total_spent_cents == 15025
    assert contact.traits["first_name"] == "Ana"
    with database.read() as session:
        merges = list(
            session.scalars(select(ContactMerge).where(ContactMerge.workspace_id == shop.ref.id))
        )
        assert [(m.from_contact_id, m.into_contact_id) for m in merges] == [(anon_id, contact.id)]
        assert get_contact(session, shop.ref.id, str(anon_id)).id == contact.id
        events, _ = contact_events(session, shop.ref.id, contact.id)
        assert len(events) == 4


def test_alias_merges_previous_id(database: Database, shop: Shop) -> None:
    """`alias` links a previous anonymous id to the user id."""
    send(
        database,
        shop,
        {
            "type": "track",
            "anonymousId": "old",
            "event": "Product Added",
            "timestamp": at(0),
            "properties": {"product_id": "p1", "price": "10.00", "quantity": 2},
        },
        {"type": "identify", "userId": "new", "timestamp": at(1)},
    )
    send(
        database, shop, {"type": "alias", "previousId": "old", "userId": "new", "timestamp": at(2)}
    )
    contact = only_contact(database, shop)
    assert contact.user_id == "new"
    assert contact.open_cart is not None
    assert contact.open_cart["value"] == "20.00"


def test_two_user_ids_are_never_merged(database: Database, shop: Shop) -> None:
    """Two people sharing an email stay two contacts: a userId is a hard identity."""
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "pai",
            "traits": {"email": "familia@loja.com"},
            "timestamp": at(0),
        },
        {
            "type": "identify",
            "userId": "filho",
            "traits": {"email": "familia@loja.com"},
            "timestamp": at(1),
        },
    )
    assert sorted(c.user_id or "" for c in contacts_of(database, shop)) == ["filho", "pai"]


def test_email_and_phone_identify_a_returning_contact(database: Database, shop: Shop) -> None:
    """An identify with only an email finds the contact that email belongs to."""
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "u1",
            "timestamp": at(0),
            "traits": {"email": "Bia@Loja.com", "phone": "11 98888-7777"},
        },
    )
    send(
        database,
        shop,
        {
            "type": "identify",
            "anonymousId": "tablet",
            "timestamp": at(1),
            "traits": {"email": "bia@loja.com"},
        },
    )
    send(
        database,
        shop,
        {
            "type": "identify",
            "anonymousId": "celular",
            "timestamp": at(2),
            "traits": {"phone": "+5511988887777"},
        },
    )
    contact = only_contact(database, shop)
    assert contact.phone == "+5511988887777"


def test_commerce_facts_follow_orders_carts_and_boletos(database: Database, shop: Shop) -> None:
    """Orders, spend, AOV, cart and boletos are kept current; a cancelled order stops counting."""
    send(
        database,
        shop,
        {
            "type": "track",
            "userId": "c",
            "event": "Product Added",
            "timestamp": at(0),
            "properties": {"product_id": "p1", "name": "Caneca", "price": "39.90", "quantity": 2},
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Product Added",
            "timestamp": at(1),
            "properties": {"product_id": "p2", "name": "Bule", "price": "120.00"},
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Product Removed",
            "timestamp": at(2),
            "properties": {"product_id": "p1", "quantity": 1},
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Checkout Started",
            "timestamp": at(3),
            "properties": {"checkout_url": "https://loja.test/checkout/77"},
        },
    )
    cart = only_contact(database, shop).open_cart
    assert cart is not None
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [("p1", 1), ("p2", 1)]
    assert cart["value"] == "159.90"
    assert cart["checkout_url"] == "https://loja.test/checkout/77"

    send(
        database,
        shop,
        {
            "type": "track",
            "userId": "c",
            "event": "Order Completed",
            "timestamp": at(4),
            "properties": {"order_id": "1", "total": "159.90", "payment_method": "boleto"},
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Boleto Issued",
            "timestamp": at(4),
            "properties": {
                "order_id": "1",
                "amount": "159.90",
                "due_date": "2026-11-04",
                "url": "https://boleto.test/1",
            },
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Order Completed",
            "timestamp": at(60),
            "properties": {"order_id": "2", "revenue": 40},
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Order Completed",
            "timestamp": at(90),
            "properties": {
                "order_id": "3",
                "products": [{"product_id": "p9", "price": "5.05", "quantity": 2}],
            },
        },
    )
    contact = only_contact(database, shop)
    assert contact.open_cart is None
    assert contact.orders_count == 3
    assert contact.total_spent_cents == 15990 + 4000 + 1010
    assert contact.first_order_at == datetime.fromisoformat(at(4))
    assert contact.last_order_at == datetime.fromisoformat(at(90))
    assert [b["order_id"] for b in contact.open_boletos] == ["1"]
    assert contact.open_boletos[0]["due_date"] == "2026-11-04"

    send(
        database,
        shop,
        {
            "type": "track",
            "userId": "c",
            "event": "Boleto Paid",
            "timestamp": at(100),
            "properties": {"order_id": "1", "amount": "159.90"},
        },
        {
            "type": "track",
            "userId": "c",
            "event": "Order Cancelled",
            "timestamp": at(120),
            "properties": {"order_id": "3"},
        },
    )
    contact = only_contact(database, shop)
    assert contact.open_boletos == []
    assert contact.orders_count == 2
    assert contact.total_spent_cents == 15990 + 4000
    assert contact.last_order_at == datetime.fromisoformat(at(60))


def test_cancel_before_complete_never_counts(database: Database, shop: Shop) -> None:
    """Events out of order across batches: a cancel seen first keeps the order out of the facts."""
    send(
        database,
        shop,
        {
            "type": "track",
            "userId": "c",
            "event": "Order Cancelled",
            "timestamp": at(5),
            "properties": {"order_id": "9"},
        },
    )
    send(
        database,
        shop,
        {
            "type": "track",
            "userId": "c",
            "event": "Order Completed",
            "timestamp": at(1),
            "properties": {"order_id": "9", "total": "10"},
        },
    )
    contact = only_contact(database, shop)
    assert (contact.orders_count, contact.total_spent_cents) == (0, 0)


def test_consent_latest_statement_wins_and_history_is_kept(database: Database, shop: Shop) -> None:
    """Consent per channel and purpose: newest statement wins even if it arrives first."""
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "u",
            "timestamp": at(10),
            "traits": {"consent": {"email_marketing": False}},
        },
    )
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "u",
            "timestamp": at(0),
            "traits": {"consent": {"email_marketing": True, "sms_transactional": True}},
        },
    )
    contact = only_contact(database, shop)
    assert contact.consent["email_marketing"]["granted"] is False
    assert contact.consent["sms_transactional"]["granted"] is True
    assert "consent" not in contact.traits
    with database.read() as session:
        history = session.execute(
            select(ConsentRecord.channel, ConsentRecord.purpose, ConsentRecord.granted)
            .where(ConsentRecord.workspace_id == shop.ref.id)
            .order_by(ConsentRecord.id)
        ).all()
    assert [tuple(h) for h in history] == [
        ("email", "marketing", False),
        ("sms", "transactional", True),
    ]


def test_time_zone_from_trait_phone_state_or_workspace(database: Database, shop: Shop) -> None:
    """Time zone: the trait, else the phone's area code, else the state, else the workspace's."""
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "trait",
            "timestamp": at(0),
            "traits": {"timezone": "Europe/Lisbon", "phone": "+5592991234567"},
        },
        {
            "type": "identify",
            "userId": "phone",
            "timestamp": at(0),
            "traits": {"phone": "+55 92 99123-4567"},
        },
        {"type": "identify", "userId": "state", "timestamp": at(0), "traits": {"state": "AC"}},
        {"type": "identify", "userId": "nothing", "timestamp": at(0)},
    )
    zones = {c.user_id: (c.timezone, c.timezone_source) for c in contacts_of(database, shop)}
    assert zones == {
        "trait": ("Europe/Lisbon", "trait"),
        "phone": ("America/Manaus", "phone"),
        "state": ("America/Rio_Branco", "state"),
        "nothing": ("America/Sao_Paulo", "workspace"),
    }


def test_locale_and_traits_update(database: Database, shop: Shop) -> None:
    send(
        database,
        shop,
        {
            "type": "identify",
            "userId": "u",
            "timestamp": at(0),
            "traits": {"name": "Ana", "plan": "free"},
            "context": {"locale": "pt-BR"},
        },
    )
    send(
        database,
        shop,
        {"type": "identify", "userId": "u", "timestamp": at(1), "traits": {"plan": "pro"}},
    )
    contact = only_contact(database, shop)
    assert contact.traits == {"name": "Ana", "plan": "pro"}
    assert contact.locale == "pt-BR"
    assert contact.stage == "New"


def test_received_batch_is_applied_in_time_order(database: Database, shop: Shop) -> None:
    """A batch sent out of order (buy, then add to cart earlier) leaves no stale open cart."""
    send(
        database,
        shop,
        {
            "type": "track",
            "userId": "u",
            "event": "Order Completed",
            "timestamp": at(5),
            "properties": {"order_id": "1", "total": 10},
        },
        {
            "type": "track",
            "userId": "u",
            "event": "Product Added",
            "timestamp": at(1),
            "properties": {"product_id": "p", "price": 10},
        },
    )
    assert only_contact(database, shop).open_cart is None


def test_naive_timestamps_are_utc_and_result_counts(database: Database, shop: Shop) -> None:
    result = send(
        database,
        shop,
        {
            "type": "track",
            "userId": "u",
            "event": "x",
            "timestamp": "2026-10-01T10:00:00",
            "messageId": "m",
        },
    )
    assert (result.accepted, result.duplicates) == (1, 0)
    with database.read() as session:
        stamp = session.scalar(select(Event.timestamp).where(Event.workspace_id == shop.ref.id))
    assert stamp == datetime(2026, 10, 1, 10, tzinfo=UTC)


def test_web_session_counts_activity_until_thirty_idle_minutes(
    database: Database, shop: Shop
) -> None:
    def view(minutes: int, product: str) -> dict[str, Any]:
        return {
            "type": "track",
            "anonymousId": "visitante",
            "event": "Product Viewed",
            "properties": {"product_id": product},
            "timestamp": at(minutes),
        }

    page = {"type": "page", "anonymousId": "visitante", "name": "Home", "timestamp": at(0)}
    send(database, shop, page, view(1, "p1"), view(20, "p2"))
    send(database, shop, view(49, "p3"))  # 29 minutes later: the same session
    with database.read() as session:
        contact = only_contact(database, shop)
        seen = get_contact(session, shop.ref.id, contact.id)
        current = contact_view(seen)["web_session"]
    assert current["counts"] == {"page": 1, "Product Viewed": 3}
    assert current["started_at"] == at(0)
    assert current["duration_seconds"] == 49 * 60
    send(database, shop, view(80, "p4"))  # 31 minutes idle: a new session
    fresh = only_contact(database, shop).web_session
    assert fresh == {"started_at": at(80), "last_at": at(80), "counts": {"Product Viewed": 1}}
    send(database, shop, view(10, "p0"))  # a late event from the old session changes nothing
    assert only_contact(database, shop).web_session == fresh
