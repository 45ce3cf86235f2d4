"""RFM kept current batch by batch: after every batch, each customer's RFM is what a full
ranking of every customer gives, whatever orders, cancellations and merges came in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jornada.audience import rfm_for_contact, rfm_table
from jornada.audience.rfm import clear_cache, ranked_boundaries
from jornada.audience.rfm_live import stored_boundaries
from jornada.db import Database
from jornada.ingest import accept_messages
from tests.conftest import NOW, make_shop

USERS = [f"u{i}" for i in range(8)]
# few totals, few days: many ties, which is where quintile bounds are subtle
step = st.one_of(
    st.tuples(
        st.just("order"),
        st.sampled_from(USERS),
        st.sampled_from([10, 25, 50, 120]),
        st.integers(0, 3),
    ),
    st.tuples(st.just("cancel"), st.sampled_from(USERS), st.just(0), st.integers(0, 3)),
    st.tuples(st.just("merge"), st.sampled_from(USERS), st.sampled_from(USERS), st.just(0)),
)


def _messages(
    steps: list[tuple[str, str, Any, int]], start: int, orders: dict[str, list[str]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for n, (kind, user, arg, days) in enumerate(steps, start=start):
        at = (NOW + timedelta(days=days, minutes=n)).isoformat()
        if kind == "order":
            order_id = f"o{n}"
            orders.setdefault(user, []).append(order_id)
            properties = {"order_id": order_id, "total": f"{arg}.00", "currency": "BRL"}
            out.append(_track(n, user, "Order Completed", at, properties))
        elif kind == "cancel" and orders.get(user):
            properties = {"order_id": orders[user].pop(0)}
            out.append(_track(n, user, "Order Cancelled", at, properties))
        elif kind == "merge" and arg != user:  # the same person, known by a second id
            out.append(
                {
                    "type": "identify",
                    "messageId": f"m{n}",
                    "userId": user,
                    "timestamp": at,
                    "traits": {"email": f"{arg}@example.com"},
                }
            )
            out.append(
                {
                    "type": "identify",
                    "messageId": f"m{n}b",
                    "userId": arg,
                    "timestamp": at,
                    "traits": {"email": f"{arg}@example.com"},
                }
            )
    return out


def _track(n: int, user: str, event: str, at: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": f"m{n}",
        "userId": user,
        "event": event,
        "timestamp": at,
        "properties": properties,
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(step, min_size=1, max_size=8), min_size=1, max_size=6))
def test_rfm_follows_a_stream_of_orders(
    database: Database, batches: list[list[tuple[str, str, Any, int]]]
) -> None:
    shop = make_shop(database)
    orders: dict[str, list[str]] = {}
    n = 0
    for batch in batches:
        messages = _messages(batch, n, orders)
        n += len(batch)
        if messages:
            accept_messages(database, shop.ref, messages, received_at=NOW, trigger_flows=False)
        clear_cache()  # nothing computed in full is reused: only what the batches kept
        with database.read() as session:
            full = rfm_table(session, shop.ref.id, NOW)  # ranks every customer afresh
            clear_cache()
            kept = {
                row.contact_id: rfm_for_contact(session, shop.ref.id, row.contact_id, NOW)
                for row in full
            }
            stored = stored_boundaries(session, shop.ref.id)
            fresh = ranked_boundaries(session, shop.ref.id)  # the database's full recomputation
        assert kept == {row.contact_id: row.rfm for row in full}
        if stored is not None:
            assert fresh == stored
