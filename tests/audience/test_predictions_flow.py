"""Flow 12 (discount timing) waits for the predicted next order date when there is a prediction."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from jornada.audience import contact_prediction, save_predictions, train_predictions
from jornada.db import Database
from jornada.flows import FlowRun, install, library_flows
from jornada.ingest import accept_messages
from tests.audience.test_predictions import ids_by_user, ingest
from tests.conftest import NOW, Shop, make_shop

SP = ZoneInfo("America/Sao_Paulo")


def order(user: str, order_id: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": at.isoformat(),
        "properties": {"order_id": order_id, "total": "50.00"},
    }


def history() -> list[dict[str, Any]]:
    """40 people who buy every 40 days or so, 60 who bought once, and ana: 30 and 20 days ago."""
    rng = random.Random(12)
    messages = []
    for i in range(40):
        at = NOW - timedelta(days=300 - rng.uniform(0, 40))
        while at < NOW:
            messages.append(order(f"regular-{i}", f"r{i}-{len(messages)}", at))
            at += timedelta(days=40 + rng.uniform(-2, 2))
    for i in range(60):
        messages.append(order(f"once-{i}", f"o{i}", NOW - timedelta(days=rng.uniform(1, 299))))
    messages.append(order("ana", "a1", NOW - timedelta(days=30)))
    messages.append(order("ana", "a2", NOW - timedelta(days=20)))
    return sorted(messages, key=lambda m: m["timestamp"])


def discount_run(database: Database, shop: Shop, contact: str) -> FlowRun:
    with database.read() as session:
        (run,) = session.scalars(
            select(FlowRun).where(
                FlowRun.workspace_id == shop.ref.id,
                FlowRun.flow_key == "discount-timing",
                FlowRun.contact_id == contact,
            )
        )
    return run


def test_discount_timing_waits_for_the_predicted_date(database: Database, shop: Shop) -> None:
    """With predictions, the discount comes 3 days before the last order plus the predicted
    interval; a shop without predictions keeps last order plus the mean gap."""
    # given: two shops with the same history and flow 12; only the first trains predictions
    plain = make_shop(database)
    (flow,) = [f for f in library_flows() if f.key == "discount-timing"]
    for s in (shop, plain):
        with database.write() as session:
            install(session, s.ref.id, flow, now=NOW - timedelta(days=400))
        ingest(database, s, history())
    with database.read() as session:
        result = train_predictions(session, shop.ref.id, now=NOW, as_of=NOW)
    with database.write() as session:
        save_predictions(session, shop.ref.id, result, NOW)
    ana = ids_by_user(database, shop)["ana"]
    with database.read() as session:
        gap = contact_prediction(session, shop.ref.id, ana)["expected_gap_days"]
    # ana's own gap is 10 days; the shop's typical one, 40; one interval weighs as much as the shop
    assert 20 < gap < 30
    # when: ana orders a third time, now, in both shops
    for s in (shop, plain):
        result_ = accept_messages(database, s.ref, [order("ana", "a3", NOW)], received_at=NOW)
        assert result_.rejected == []
    # then
    predicted = discount_run(database, shop, ana).wake_at
    heuristic = discount_run(database, plain, ids_by_user(database, plain)["ana"]).wake_at
    assert predicted is not None
    assert heuristic is not None
    expected_day = (NOW + timedelta(days=gap) - timedelta(days=3)).astimezone(SP).date()
    assert predicted.astimezone(SP).date() == expected_day
    assert predicted.astimezone(SP).hour == 10
    # last order plus (last - first) / (orders - 1) = now + 15 days
    assert heuristic.astimezone(SP).date() == (NOW + timedelta(days=12)).astimezone(SP).date()
