"""Flows end to end through ingestion and the scheduler, at exact virtual times, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from jornada.channels.models import Message
from jornada.crm import Member, Task
from jornada.db import Database
from jornada.flows import FlowRun, FlowRunStep, install, library_flows
from jornada.ingest import accept_messages
from jornada.outbox import OutboxItem
from jornada.scheduler import tick
from tests.conftest import Shop

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # Tuesday 10:00 in São Paulo
CART = next(f for f in library_flows() if f.key == "cart-abandonment")


def send(database: Database, shop: Shop, at: datetime, *messages: dict[str, Any]) -> None:
    stamped = [{"timestamp": at.isoformat(), **m} for m in messages]
    result = accept_messages(database, shop.ref, stamped, received_at=at)
    assert result.rejected == []


def customer(consent: bool = True) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": "ana",
        "traits": {
            "email": "ana@loja.com",
            "phone": "+5511987654321",
            "consent": {"email_marketing": consent, "whatsapp_marketing": consent},
        },
    }


def checkout() -> dict[str, Any]:
    return {
        "type": "track",
        "userId": "ana",
        "event": "Checkout Started",
        "properties": {"checkout_url": "https://loja.test/c/1", "value": "199.90"},
    }


def setup(database: Database, shop: Shop) -> None:
    with database.write() as session:
        install(session, shop.ref.id, CART, now=T0)
        session.add(
            Member(
                id="m1",
                workspace_id=shop.ref.id,
                name="Bia",
                email="bia@loja.com",
                active=True,
                created_at=T0,
            )
        )


def ticks(database: Database, *moments: datetime) -> None:
    for moment in moments:
        tick(database, moment)


def messages(database: Database, shop: Shop) -> list[tuple[str, datetime]]:
    with database.read() as session:
        return [
            (m.channel, m.created_at)
            for m in session.scalars(
                select(Message).where(Message.workspace_id == shop.ref.id).order_by(Message.id)
            )
        ]


def outbox(database: Database, shop: Shop) -> list[tuple[str | None, str, str | None]]:
    with database.read() as session:
        return [
            (i.channel, i.status, i.reason)
            for i in session.scalars(
                select(OutboxItem)
                .where(OutboxItem.workspace_id == shop.ref.id)
                .order_by(OutboxItem.id)
            )
        ]


def the_run(database: Database, shop: Shop) -> FlowRun:
    with database.read() as session:
        (run,) = session.scalars(select(FlowRun).where(FlowRun.workspace_id == shop.ref.id))
        return run


def test_cart_abandonment_happy_path_at_exact_times(database: Database, shop: Shop) -> None:
    """1 h after checkout: email and WhatsApp; a click and 2 h without order: a call task due in 15 min."""
    # given
    setup(database, shop)
    send(database, shop, T0 - timedelta(minutes=5), customer())
    send(database, shop, T0, checkout())
    # when
    ticks(database, T0 + timedelta(minutes=59))
    assert messages(database, shop) == []
    ticks(database, T0 + timedelta(hours=1))
    send(
        database,
        shop,
        T0 + timedelta(hours=1, minutes=30),
        {"type": "track", "userId": "ana", "event": "Message Clicked", "properties": {}},
    )
    ticks(database, T0 + timedelta(hours=3, minutes=29), T0 + timedelta(hours=3, minutes=30))
    # then
    assert messages(database, shop) == [
        ("email", T0 + timedelta(hours=1)),
        ("whatsapp", T0 + timedelta(hours=1)),
    ]
    with database.read() as session:
        (task,) = session.scalars(select(Task).where(Task.workspace_id == shop.ref.id))
        steps = [
            s.action
            for s in session.scalars(
                select(FlowRunStep)
                .where(FlowRunStep.workspace_id == shop.ref.id)
                .order_by(FlowRunStep.seq)
            )
        ]
    assert task.due_at == T0 + timedelta(hours=3, minutes=45)
    assert task.assignee == "bia@loja.com"
    assert task.priority == "high"
    assert steps == ["enter", "wait", "send", "send", "wait", "wait", "task", "exit"]
    run = the_run(database, shop)
    assert (run.status, run.end_reason) == ("completed", "completed")


def test_order_before_the_hour_converts_and_sends_nothing(database: Database, shop: Shop) -> None:
    """The goal reached early ends the run as a conversion with the order's revenue."""
    setup(database, shop)
    send(database, shop, T0, customer(), checkout())
    send(
        database,
        shop,
        T0 + timedelta(minutes=30),
        {
            "type": "track",
            "userId": "ana",
            "event": "Order Completed",
            "properties": {"order_id": "1", "total": "199.90"},
        },
    )
    ticks(database, T0 + timedelta(hours=1), T0 + timedelta(hours=5))
    assert messages(database, shop) == []
    run = the_run(database, shop)
    assert (run.status, run.end_reason, run.revenue_cents) == ("converted", "converted", 19990)


def test_without_consent_sends_are_suppressed_with_reason(database: Database, shop: Shop) -> None:
    setup(database, shop)
    send(database, shop, T0, customer(consent=False), checkout())
    ticks(database, T0 + timedelta(hours=1))
    assert outbox(database, shop) == [
        ("email", "suppressed", "no consent: email_marketing"),
        ("whatsapp", "suppressed", "no consent: whatsapp_marketing"),
    ]
    assert messages(database, shop) == []


def test_whatsapp_in_quiet_hours_waits_for_8am_local(database: Database, shop: Shop) -> None:
    """Checkout at 19:30 local: the email goes at 20:30, the WhatsApp at 08:00 next morning."""
    evening = datetime(2026, 11, 3, 22, 30, tzinfo=UTC)  # 19:30 in São Paulo
    setup(database, shop)
    send(database, shop, evening, customer(), checkout())
    ticks(
        database,
        evening + timedelta(hours=1),
        datetime(2026, 11, 4, 10, 59, tzinfo=UTC),
        datetime(2026, 11, 4, 11, 0, tzinfo=UTC),
    )
    assert messages(database, shop) == [
        ("email", evening + timedelta(hours=1)),
        ("whatsapp", datetime(2026, 11, 4, 11, 0, tzinfo=UTC)),
    ]


def test_reply_stops_the_run(database: Database, shop: Shop) -> None:
    setup(database, shop)
    send(database, shop, T0, customer(), checkout())
    ticks(database, T0 + timedelta(hours=1))
    send(
        database,
        shop,
        T0 + timedelta(hours=1, minutes=5),
        {"type": "track", "userId": "ana", "event": "Message Replied", "properties": {}},
    )
    ticks(database, T0 + timedelta(days=1))
    run = the_run(database, shop)
    assert (run.status, run.end_reason) == ("exited", "exited:reply")
    with database.read() as session:
        assert session.scalars(select(Task)).all() == []


def test_reentry_waits_a_day(database: Database, shop: Shop) -> None:
    """A second checkout the same day does not start a second run; a day later it does."""
    setup(database, shop)
    send(database, shop, T0, customer(), checkout())
    send(database, shop, T0 + timedelta(hours=2), {**checkout(), "messageId": "again"})
    ticks(database, T0 + timedelta(hours=1), T0 + timedelta(days=3))  # the first run expires
    send(database, shop, T0 + timedelta(days=4), {**checkout(), "messageId": "later"})
    with database.read() as session:
        runs = session.scalars(select(FlowRun.entered_at).order_by(FlowRun.entered_at)).all()
    assert runs == [T0, T0 + timedelta(days=4)]


def test_a_run_keeps_its_version_when_the_flow_changes(database: Database, shop: Shop) -> None:
    """Applying a changed flow makes a new version; a waiting run finishes on the old one."""
    setup(database, shop)
    send(database, shop, T0, customer(), checkout())
    changed = CART.model_copy(update={"name": "Carrinho v2"})
    with database.write() as session:
        second = install(session, shop.ref.id, changed, now=T0)
        assert second.version == 2
        assert install(session, shop.ref.id, changed, now=T0).version == 2
    ticks(database, T0 + timedelta(hours=1))
    with database.read() as session:
        run = session.scalars(select(FlowRun)).one()
        assert run.flow_version_id != second.id
    assert [c for c, _ in messages(database, shop)] == ["email", "whatsapp"]


def test_sandbox_messages_are_rendered_from_the_templates(database: Database, shop: Shop) -> None:
    """The email has the cart's items, value and link; the missing first name falls back."""
    setup(database, shop)
    send(
        database,
        shop,
        T0 - timedelta(minutes=5),
        customer(),
        {
            "type": "track",
            "userId": "ana",
            "event": "Product Added",
            "properties": {
                "product_id": "p1",
                "name": "Caneca Azul",
                "price": "39.90",
                "quantity": 2,
            },
        },
    )
    send(database, shop, T0, checkout())
    ticks(database, T0 + timedelta(hours=1))
    with database.read() as session:
        email, whatsapp = session.scalars(select(Message).order_by(Message.id)).all()
        items = {i.channel: i for i in session.scalars(select(OutboxItem))}
    assert email.subject == "Você esqueceu 1 item no carrinho"
    assert "Caneca Azul: R$ 39,90" in email.body
    assert "Total: R$ 199,90" in email.body
    assert 'href="https://loja.test/c/1"' in email.body
    assert email.body.startswith("<p>Olá, seu carrinho está guardado:</p>")
    assert whatsapp.body == (
        "Oi, tudo bem! Seu carrinho de R$ 199,90 ainda está te esperando: https://loja.test/c/1"
    )
    # the shop has no URL configured yet: reported, as the missing first name is
    assert items["email"].reason == "fell back on contact.traits.first_name, shop.url"
