"""Property: commerce facts equal an independent computation, however events are batched or ordered."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.contacts import Contact
from jornada.db import Database
from jornada.ingest import accept_messages
from tests.conftest import NOW, make_shop

order_event = st.tuples(
    st.sampled_from(["Order Completed", "Order Completed", "Order Cancelled", "Order Refunded"]),
    st.integers(min_value=0, max_value=5),  # order id
    st.integers(min_value=0, max_value=100_000),  # total in cents
    st.integers(min_value=0, max_value=10_000),  # minutes after the start
    st.booleans(),  # resend the same message (client retry)
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=st.lists(order_event, max_size=14), cuts=st.lists(st.integers(0, 14), max_size=3))
def test_orders_count_and_spend_match_an_independent_fold(
    database: Database, events: list[tuple[str, int, int, int, bool]], cuts: list[int]
) -> None:
    """An order counts if no cancel/refund ever arrived; its first event fixes its total and time.

    "First" is arrival order across batches and timestamp order inside a batch,
    which is the order in which ingestion applies events.
    """
    # given
    shop = make_shop(database)
    messages = []
    origin: list[int] = []
    for n, (name, order, cents, minute, resend) in enumerate(events):
        message = {
            "type": "track",
            "userId": "buyer",
            "event": name,
            "messageId": f"m{n}",
            "timestamp": (NOW - timedelta(days=10) + timedelta(minutes=minute)).isoformat(),
            "properties": {"order_id": str(order), "total": str(Decimal(cents) / 100)},
        }
        messages.append(message)
        origin.append(n)
        if resend:
            messages.append(dict(message))
            origin.append(n)
    # when: sent in arbitrary batches
    bounds = sorted({0, len(messages), *(min(c, len(messages)) for c in cuts)})
    for start, end in pairwise(bounds):
        accept_messages(database, shop.ref, messages[start:end], received_at=NOW)
    # then
    first_total: dict[int, int] = {}
    first_at: dict[int, int] = {}
    closed: set[int] = set()
    seen: set[int] = set()
    for start, end in pairwise(bounds):
        fresh = []
        for n in origin[start:end]:
            if n not in seen:
                seen.add(n)
                fresh.append(n)
        for n in sorted(fresh, key=lambda i: events[i][3]):
            name, order, cents, minute, _resend = events[n]
            first_total.setdefault(order, cents)  # a cancel seen first creates the order, closed
            first_at.setdefault(order, minute)
            if name != "Order Completed":
                closed.add(order)
    counted = [o for o in first_total if o not in closed]
    with database.read() as session:
        contact = session.scalar(select(Contact).where(Contact.workspace_id == shop.ref.id))
    if not events:
        assert contact is None
        return
    assert contact is not None
    assert contact.orders_count == len(counted)
    assert contact.total_spent_cents == sum(first_total[o] for o in counted)
    expected_last = max((first_at[o] for o in counted), default=None)
    if expected_last is None:
        assert contact.last_order_at is None
    else:
        assert contact.last_order_at == NOW - timedelta(days=10) + timedelta(minutes=expected_last)
