"""Predictions on a synthetic shop whose signal is known: periodic buyers, one-time buyers, browsers.

The history is generated (seeded) and ingested through the public ingestion API;
training, evaluation and storage run through the engine functions, on both
databases. The holdout figures are recomputed here by hand from the holdout's
own predictions and labels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from jornada.audience import contact_prediction, save_predictions, train_predictions
from jornada.audience.predict import AdditiveModel, ContactPrediction, PredictionModel
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.ingest import accept_messages
from tests.conftest import NOW, Shop

DAYS = 400  # of history before NOW


@dataclass
class Synthetic:
    """What was generated: each periodic buyer's true period and every order time by user."""

    periods: dict[str, float] = field(default_factory=dict)
    orders: dict[str, list[datetime]] = field(default_factory=dict)
    churned: set[str] = field(default_factory=set)


def synthetic_history(
    seed: int = 7, now: datetime = NOW, prefix: str = ""
) -> tuple[list[dict[str, Any]], Synthetic]:
    """120 periodic buyers (10-80 days, ±3 days jitter, a fifth stop buying at some point),
    150 one-time buyers and 100 people who only browse, over the 400 days before ``now``."""
    rng = random.Random(seed)
    start = now - timedelta(days=DAYS)
    messages: list[dict[str, Any]] = []
    truth = Synthetic()
    n = 0

    def order(user: str, at: datetime, total: str) -> None:
        nonlocal n
        n += 1
        truth.orders.setdefault(user, []).append(at)
        messages.append(
            {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "timestamp": at.isoformat(),
                "properties": {"order_id": f"{prefix}o{n}", "total": total},
            }
        )

    def view(user: str, at: datetime) -> None:
        messages.append(
            {
                "type": "track",
                "userId": user,
                "event": "Product Viewed",
                "timestamp": at.isoformat(),
                "properties": {"product_id": "p1", "price": "10.00"},
            }
        )

    for i in range(120):
        user = f"{prefix}periodic-{i}"
        period = rng.uniform(10, 80)
        truth.periods[user] = period
        stop = now
        if rng.random() < 0.2:
            truth.churned.add(user)
            stop = now - timedelta(days=rng.uniform(60, 200))
        at = start + timedelta(days=rng.uniform(0, period))
        while at < stop:
            view(user, at - timedelta(hours=2))
            order(user, at, "50.00")
            at += timedelta(days=period + rng.uniform(-3, 3))
    for i in range(150):
        user = f"{prefix}once-{i}"
        at = start + timedelta(days=rng.uniform(0, DAYS - 1))
        view(user, at - timedelta(hours=1))
        order(user, at, "80.00")
    for i in range(100):
        view(f"{prefix}browser-{i}", start + timedelta(days=rng.uniform(0, DAYS - 1)))
    messages.sort(key=lambda m: m["timestamp"])
    return messages, truth


def ingest(database: Database, shop: Shop, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 500):
        result = accept_messages(
            database, shop.ref, messages[start : start + 500], received_at=NOW, trigger_flows=False
        )
        assert result.rejected == []


def ids_by_user(database: Database, shop: Shop) -> dict[str, str]:
    with database.read() as session:
        rows = session.execute(
            select(Contact.user_id, Contact.id).where(Contact.workspace_id == shop.ref.id)
        )
        return {user: cid for user, cid in rows if user}


def mann_whitney_auc(y: np.ndarray[Any, Any], p: np.ndarray[Any, Any]) -> float:
    """P(score of a random positive > score of a random negative), ties counting half."""
    pos, neg = p[y == 1], p[y == 0]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def test_holdout_evaluation_on_periodic_history(database: Database, shop: Shop) -> None:
    """Periodic buyers are predictable: the holdout AUC is high and its figures are what they say."""
    # given
    messages, truth = synthetic_history()
    ingest(database, shop, messages)
    # when
    with database.read() as session:
        result = train_predictions(session, shop.ref.id, now=NOW, as_of=NOW)
    ev = result.evaluation
    # then: the holdout is everyone first seen before NOW - 30 d; positive: ordered since
    cutoff = NOW - timedelta(days=30)
    first_seen: dict[str, str] = {}
    for m in messages:
        first_seen[m["userId"]] = min(first_seen.get(m["userId"], m["timestamp"]), m["timestamp"])
    expected_holdout = {u for u, at in first_seen.items() if datetime.fromisoformat(at) < cutoff}
    expected_positive = {
        u
        for u in expected_holdout
        if any(cutoff <= t < cutoff + timedelta(days=30) for t in truth.orders.get(u, []))
    }
    by_id = {cid: user for user, cid in ids_by_user(database, shop).items()}
    holdout_users = [by_id[cid] for cid in result.holdout.contact_ids]
    assert ev["holdout"]["cutoff"] == cutoff.isoformat()
    assert set(holdout_users) == expected_holdout
    assert ev["holdout"]["contacts"] == len(expected_holdout)
    assert {u for u, y in zip(holdout_users, result.holdout.y, strict=True) if y} == (
        expected_positive
    )
    assert ev["holdout"]["positives"] == len(expected_positive) > 20
    # the figures, recomputed from the holdout's predictions
    y, p = result.holdout.y, result.holdout_probability
    assert ev["roc_auc"] == pytest.approx(mann_whitney_auc(y, p), abs=1e-9)
    assert ev["roc_auc"] > 0.85
    assert ev["recency_auc"] is not None
    assert ev["roc_auc"] >= ev["recency_auc"]
    low, high = ev["roc_auc_ci95"]
    assert low <= ev["roc_auc"] <= high
    assert ev["brier"] == pytest.approx(float(np.mean((p - y) ** 2)), abs=1e-12)
    assert ev["brier"] < ev["base_rate_brier"]
    bins = ev["calibration"]
    assert len(bins) == 5
    assert sum(b["count"] for b in bins) == len(y)
    assert sum(b["positives"] for b in bins) == int(y.sum())
    assert [b["mean_predicted"] for b in bins] == sorted(b["mean_predicted"] for b in bins)
    assert ev["notes"] == []
    # the date: contacts with an interval who ordered again in the window are measured
    assert ev["next_order"]["contacts"] > 20
    assert ev["next_order"]["median_abs_days"] < 5


def test_stored_predictions_follow_each_buyers_period(database: Database, shop: Shop) -> None:
    """The expected interval of a regular buyer is close to its true period; dates follow it."""
    # given
    messages, truth = synthetic_history(seed=11)
    ingest(database, shop, messages)
    # when
    with database.read() as session:
        result = train_predictions(session, shop.ref.id, now=NOW, as_of=NOW)
    with database.write() as session:
        version = save_predictions(session, shop.ref.id, result, NOW)
    # then
    ids = ids_by_user(database, shop)
    checked = 0
    with database.read() as session:
        assert session.scalar(
            select(func.count())
            .select_from(ContactPrediction)
            .where(ContactPrediction.workspace_id == shop.ref.id)
        ) == len(ids)
        for user, period in truth.periods.items():
            times = truth.orders[user]
            if len(times) < 6:  # five intervals or more: the contact's own rhythm dominates
                continue
            view = contact_prediction(session, shop.ref.id, ids[user])
            assert view["model_version"] == version
            # shrunk toward the shop's typical interval by 1/(intervals + 1) of the difference
            assert abs(view["expected_gap_days"] - period) <= max(3.0, 0.15 * period)
            expected_at = times[-1] + timedelta(days=view["expected_gap_days"])
            assert abs(
                datetime.fromisoformat(view["expected_next_order_at"]) - expected_at
            ) < timedelta(seconds=1)
            assert view["next_order_reason"] is None
            checked += 1
    assert checked > 50


def test_no_orders_or_one_order_get_a_probability_and_no_date(
    database: Database, shop: Shop
) -> None:
    """Browsers and one-time buyers are scored, but their next date is null with the reason."""
    messages, _ = synthetic_history(seed=3)
    ingest(database, shop, messages)
    with database.read() as session:
        result = train_predictions(session, shop.ref.id, now=NOW, as_of=NOW)
    with database.write() as session:
        save_predictions(session, shop.ref.id, result, NOW)
    ids = ids_by_user(database, shop)
    with database.read() as session:
        browser = contact_prediction(session, shop.ref.id, ids["browser-0"])
        once = contact_prediction(session, shop.ref.id, ids["once-0"])
    for view in (browser, once):
        assert 0.0 < view["probability"] < 1.0
        assert view["expected_next_order_at"] is None
        assert view["expected_gap_days"] is None
    assert browser["next_order_reason"] == "no orders yet"
    assert once["next_order_reason"] == "one order: no interval between orders yet"
    values = {c["feature"]: c["value"] for c in browser["contributions"]}
    assert values["orders"] == 0
    assert values["days_since_last_order"] is None  # missing, and said so


def test_contributions_add_up_to_the_log_odds(database: Database, shop: Shop) -> None:
    """Base value plus contributions is the contact's log-odds, exactly (the model is additive)."""
    messages, _ = synthetic_history(seed=5)
    ingest(database, shop, messages)
    with database.read() as session:
        result = train_predictions(session, shop.ref.id, now=NOW, as_of=NOW)
    with database.write() as session:
        save_predictions(session, shop.ref.id, result, NOW)
        model_json = session.scalar(
            select(PredictionModel.parameters).where(PredictionModel.workspace_id == shop.ref.id)
        )
    # the engine's own explanations
    for explained in result.explanations:
        logit = explained.base_value + sum(c for _, _, c in explained.contributions)
        assert 1 / (1 + math.exp(-logit)) == pytest.approx(explained.probability, abs=1e-12)
        magnitudes = [abs(c) for _, _, c in explained.contributions]
        assert magnitudes == sorted(magnitudes, reverse=True)
    # the stored ones (contributions rounded to 6 decimals)
    ids = ids_by_user(database, shop)
    with database.read() as session:
        for user in ("periodic-0", "once-0", "browser-0"):
            view = contact_prediction(session, shop.ref.id, ids[user])
            logit = view["base_value"] + sum(c["contribution"] for c in view["contributions"])
            assert logit == pytest.approx(
                math.log(view["probability"] / (1 - view["probability"])), abs=1e-4
            )
    # the stored model (JSON, not a pickle) scores exactly as the fitted one
    reloaded = AdditiveModel.from_json(model_json)
    assert np.allclose(
        reloaded.probability(result.scored.matrix), result.model.probability(result.scored.matrix)
    )


def test_too_little_history_is_a_clear_error(database: Database, shop: Shop) -> None:
    """One order in the whole shop: nothing to learn, and the error says so; nothing is stored."""
    ingest(
        database,
        shop,
        [
            {
                "type": "track",
                "userId": "ana",
                "event": "Order Completed",
                "timestamp": (NOW - timedelta(days=5)).isoformat(),
                "properties": {"order_id": "1", "total": "10.00"},
            }
        ],
    )
    with database.read() as session, pytest.raises(InvalidInput, match="not enough history"):
        train_predictions(session, shop.ref.id, now=NOW)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(PredictionModel)) == 0
