"""Reads what the features need from the database: a handful of queries, never one per contact.

* contacts (not merged) with their first-seen time: one query;
* every order of the workspace, streamed once: time, total, counted or not;
* every ``Survey Answered`` score, streamed once (the last review before a cutoff);
* per cutoff, one ``GROUP BY contact_id`` over the events of the year before it,
  with conditional sums for the activity windows (:data:`WINDOW_COLUMNS`).

Orders count as the contact facts do: an order is counted unless it is now
cancelled or refunded. The status is today's, so an order placed before a
past cutoff and cancelled after it is already left out at that cutoff: a small
look-ahead, kept because the orders table keeps no status history.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from jornada.audience.predict.features import (
    LOOKBACK_DAYS,
    REVIEW_EVENT,
    WINDOW_COLUMNS,
    History,
    Windows,
)
from jornada.contacts import Contact, Order
from jornada.events.models import Event

COUNTED = "completed"  # the orders table's status for an order that counts


def epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def load_history(session: Session, workspace_id: str) -> History:
    """Contacts, orders and review scores of the workspace (three queries, streamed)."""
    contacts = session.execute(
        select(Contact.id, Contact.first_seen_at)
        .where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
        .order_by(Contact.id)
    ).all()
    history = History(
        contact_ids=[cid for cid, _ in contacts],
        first_seen=[epoch(at) for _, at in contacts],
    )
    orders: dict[str, list[tuple[float, int, bool]]] = defaultdict(list)
    for cid, at, cents, status in session.execute(
        select(Order.contact_id, Order.placed_at, Order.total_cents, Order.status)
        .where(Order.workspace_id == workspace_id)
        .execution_options(yield_per=5000)
    ):
        orders[cid].append((epoch(at), int(cents), status == COUNTED))
    for items in orders.values():
        items.sort()
    history.orders = dict(orders)
    reviews: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for cid, at, properties in session.execute(
        select(Event.contact_id, Event.timestamp, Event.properties)
        .where(Event.workspace_id == workspace_id, Event.event == REVIEW_EVENT)
        .execution_options(yield_per=5000)
    ):
        score = _number((properties or {}).get("score"))
        if score is not None:
            reviews[cid].append((epoch(at), score))
    for scores in reviews.values():
        scores.sort()
    history.reviews = dict(reviews)
    return history


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def event_windows(session: Session, workspace_id: str, cutoff: datetime) -> Windows:
    """Per contact: the activity counts of :data:`WINDOW_COLUMNS` and the last event before ``cutoff``.

    One aggregate query over the year before the cutoff (the events index on
    ``workspace_id, event, timestamp`` and ``workspace_id, contact_id, timestamp``).
    """

    def window(names: tuple[str, ...], days: int) -> Any:
        since = Event.timestamp >= cutoff - timedelta(days=days)
        matches: ColumnElement[bool] = (
            Event.type.in_(("page", "screen"))
            if names == ("page",)
            else and_(Event.type == "track", Event.event.in_(names))
        )
        return func.sum(case((and_(matches, since), 1), else_=0))

    statement = (
        select(
            Event.contact_id,
            func.max(Event.timestamp),
            *(window(names, days) for _, names, days in WINDOW_COLUMNS),
        )
        .where(
            Event.workspace_id == workspace_id,
            Event.timestamp < cutoff,
            Event.timestamp >= cutoff - timedelta(days=LOOKBACK_DAYS),
        )
        .group_by(Event.contact_id)
    )
    out: dict[str, tuple[tuple[int, ...], float | None]] = {}
    for cid, last, *counts in session.execute(statement):
        out[cid] = (tuple(int(c or 0) for c in counts), epoch(last) if last else None)
    return out
