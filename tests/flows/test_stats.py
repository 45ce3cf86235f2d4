"""Flow statistics over the admin API: funnel, sends per step, attributed revenue, holdout uplift."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from jornada.db import Database
from jornada.flows import install, library_flows
from jornada.ingest import accept_messages
from jornada.metrics import AttributionWindow, attribute, uplift
from jornada.metrics.attribution import OrderFact, Touch
from jornada.scheduler import tick
from tests.conftest import Shop
from tests.support.server import LiveServer

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)


def test_uplift_interval_contains_the_difference_and_shrinks_with_more_data() -> None:
    small = uplift(30, 100, 20, 100)
    large = uplift(3000, 10000, 2000, 10000)
    assert small is not None
    assert large is not None
    assert small.difference == pytest.approx(0.10)
    assert small.low < 0.10 < small.high
    assert large.high - large.low < (small.high - small.low) / 5
    assert uplift(1, 10, 0, 0) is None


def test_attribution_windows() -> None:
    """5 days after a click, 1 day after a delivery; each order counted once."""
    touches = [Touch("a", T0, "click"), Touch("b", T0, "delivery"), Touch("b", T0, "click")]
    orders = [
        OrderFact("a", "1", T0 + timedelta(days=4, hours=23), 100),
        OrderFact("a", "2", T0 + timedelta(days=5, hours=1), 100),
        OrderFact("b", "3", T0 + timedelta(hours=2), 50),
        OrderFact("c", "4", T0 + timedelta(hours=2), 70),
    ]
    earned = attribute(orders, touches, AttributionWindow())
    assert [o.order_id for o in earned] == ["1", "3"]


def test_flow_stats_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """Stats count runs, sends and suppressions per step, conversions and revenue; the list shows runs."""
    server, shop, db = server_shop
    cart = next(f for f in library_flows() if f.key == "cart-abandonment")
    with db.write() as session:
        install(session, shop.ref.id, cart, now=T0)

    def send(at: datetime, *messages: dict[str, Any]) -> None:
        accept_messages(
            db, shop.ref, [{"timestamp": at.isoformat(), **m} for m in messages], received_at=at
        )

    for n, consent in enumerate([True, True, False]):
        user = f"c{n}"
        send(
            T0,
            {
                "type": "identify",
                "userId": user,
                "traits": {
                    "email": f"{user}@loja.com",
                    "phone": "+5511987654321",
                    "consent": {"email_marketing": consent, "whatsapp_marketing": consent},
                },
            },
            {"type": "track", "userId": user, "event": "Checkout Started", "properties": {}},
        )
    tick(db, T0 + timedelta(hours=1))
    send(
        T0 + timedelta(hours=3),
        {
            "type": "track",
            "userId": "c0",
            "event": "Order Completed",
            "properties": {"order_id": "x", "total": "250.00"},
        },
    )
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    stats = httpx.get(f"{server.url}/api/v1/flows/cart-abandonment/stats", headers=headers).json()
    assert stats["entered"] == 3
    assert stats["converted"] == 1
    assert stats["active"] == 2
    assert stats["steps"] == [
        {
            "step": "email",
            "channel": "email",
            "sent": 2,
            "suppressed": 1,
            "reasons": {"no consent: email_marketing": 1},
        },
        {
            "step": "whatsapp",
            "channel": "whatsapp",
            "sent": 2,
            "suppressed": 1,
            "reasons": {"no consent: whatsapp_marketing": 1},
        },
    ]
    assert stats["goal_revenue"] == "250.00"
    # the order came 2 h after the email was delivered: inside the 1-day window
    assert stats["attributed_orders"] == 1
    assert stats["attributed_revenue"] == "250.00"
    listing = httpx.get(f"{server.url}/api/v1/flows", headers=headers).json()["data"]
    assert listing == [
        {
            "key": "cart-abandonment",
            "name": cart.name,
            "version": 1,
            "runs": {
                "scheduled": 0,
                "active": 2,
                "converted": 1,
                "completed": 0,
                "exited": 0,
                "cancelled": 0,
            },
        }
    ]
    missing = httpx.get(f"{server.url}/api/v1/flows/nope/stats", headers=headers)
    assert missing.status_code == 404


def test_holdout_keeps_a_control_group_and_stats_report_uplift(
    database: Database, shop: Shop
) -> None:
    """With a 50 % holdout, about half the contacts get nothing; both groups' conversions are counted."""
    from jornada.flows import FlowDocument
    from jornada.metrics import flow_stats

    doc = FlowDocument.model_validate(
        {
            "key": "teste-holdout",
            "name": "Holdout",
            "trigger": {"event": "Signed Up"},
            "entry": {"holdout": 50},
            "goal": {"event": "Order Completed"},
            "steps": [
                {
                    "id": "oi",
                    "send": {
                        "channel": "email",
                        "template": "welcome-brand-story",
                        "purpose": "transactional",
                    },
                },
                {"id": "espera", "wait": "7d"},
            ],
        }
    )
    with database.write() as session:
        install(session, shop.ref.id, doc, now=T0)
    people = [f"p{i}" for i in range(200)]
    accept_messages(
        database,
        shop.ref,
        [
            {"type": "track", "userId": p, "event": "Signed Up", "timestamp": T0.isoformat()}
            for p in people
        ],
        received_at=T0,
    )
    later = T0 + timedelta(days=1)
    accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "track",
                "userId": p,
                "event": "Order Completed",
                "timestamp": later.isoformat(),
                "properties": {"order_id": p, "total": "10"},
            }
            for p in people[::3]
        ],
        received_at=later,
    )
    with database.read() as session:
        stats = flow_stats(session, shop.ref.id, "teste-holdout")
        from sqlalchemy import func, select

        from jornada.flows import FlowRun
        from jornada.outbox import OutboxItem

        control = session.scalars(select(FlowRun.id).where(FlowRun.holdout.is_(True))).all()
        touched = session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.run_id.in_(control))
        )
    assert stats["entered"] == 200
    assert stats["holdout"] + stats["treated"] == 200
    assert 70 < stats["holdout"] < 130
    assert touched == 0  # the control group got nothing
    assert stats["uplift"] is not None
    assert stats["uplift"]["low"] < stats["uplift"]["difference"] < stats["uplift"]["high"]
