"""A small hand-made shop whose members of every built-in segment are known by heart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from jornada.db import Database
from jornada.ingest import accept_messages
from tests.conftest import NOW, Shop

#: the user ids in each built-in segment of :func:`populate`
EXPECTED: dict[str, set[str]] = {
    "new-customers": {"nova"},
    "recurring-customers": {"fiel"},
    "inactive-30d": {"fiel", "sumida", "media", "vip"},
    "inactive-60d": {"sumida", "vip"},
    "inactive-90d": {"sumida", "vip"},
    "cart-abandoners": {"carrinho"},
    "never-bought": {"assinante"},
    "b2b": {"empresa", "lead"},
    # spends 100, 200, 300, 400, 1000: the nearest-rank 80th percentile is 400
    "high-ticket": {"vip"},
}

#: R, F, M and cell of each customer (cancelado's only order was cancelled: not a customer).
#: R by last order: sumida 100 d, vip 95, media 50, fiel 45, nova 10 days ago;
#: F: four customers with 1 order (below = 0, so F 1), fiel with 2 (below = 4 of 5, F 5);
#: M: spends 100 < 200 < 300 < 400 < 1000; FM = (F + M) // 2.
EXPECTED_RFM: dict[str, tuple[int, int, int, str]] = {
    "nova": (5, 1, 1, "new"),  # FM 1
    "fiel": (4, 5, 2, "potential-loyalists"),  # FM 3
    "media": (3, 1, 4, "hibernating"),  # FM 2
    "vip": (2, 1, 5, "at-risk"),  # FM 3
    "sumida": (1, 1, 3, "lost"),  # FM 2
}
#: the user ids in each RFM cell segment
EXPECTED_CELLS: dict[str, set[str]] = {
    f"rfm-{cell}": {user for user, (*_, c) in EXPECTED_RFM.items() if c == cell}
    for cell in (
        "champions",
        "loyal",
        "potential-loyalists",
        "new",
        "at-risk",
        "cant-lose",
        "hibernating",
        "lost",
    )
}


def populate(database: Database, shop: Shop, now: datetime = NOW) -> None:
    """Ingest the shop's history, relative to ``now``, through the public ingestion API."""

    def ago(days: int) -> str:
        return (now - timedelta(days=days)).isoformat()

    result = accept_messages(database, shop.ref, _messages(ago), received_at=now)
    assert result.rejected == [], result.rejected


def _order(
    ago: Callable[[int], str], user: str, order_id: str, total: str, days: int
) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": ago(days),
        "properties": {"order_id": order_id, "total": total},
    }


def _messages(ago: Callable[[int], str]) -> list[dict[str, Any]]:
    return [
        _order(ago, "nova", "o1", "100.00", 10),
        _order(ago, "fiel", "o2", "100.00", 80),
        _order(ago, "fiel", "o3", "100.00", 45),
        _order(ago, "sumida", "o4", "300.00", 100),
        _order(ago, "media", "o5", "400.00", 50),
        _order(ago, "vip", "o6", "1000.00", 95),
        _order(ago, "cancelado", "o7", "50.00", 5),
        {
            "type": "track",
            "userId": "cancelado",
            "event": "Order Cancelled",
            "timestamp": ago(4),
            "properties": {"order_id": "o7"},
        },
        {
            "type": "track",
            "userId": "carrinho",
            "event": "Product Added",
            "timestamp": ago(1),
            "properties": {"product_id": "p1", "price": "39.90", "quantity": 1},
        },
        {
            "type": "identify",
            "userId": "assinante",
            "timestamp": ago(3),
            "traits": {"email": "ana@loja.com", "consent": {"email_marketing": True}},
        },
        {
            "type": "identify",
            "userId": "recusou",
            "timestamp": ago(3),
            "traits": {"email": "rui@loja.com", "consent": {"email_marketing": False}},
        },
        {
            "type": "identify",
            "userId": "empresa",
            "timestamp": ago(2),
            "traits": {"cnpj": "12.345.678/0001-90"},
        },
        {"type": "identify", "userId": "lead", "timestamp": ago(2), "traits": {"lead_type": "b2b"}},
        {
            "type": "identify",
            "userId": "pessoa",
            "timestamp": ago(2),
            "traits": {"lead_type": "b2c"},
        },
    ]


#: the cell grid of docs/segments.md, written out independently of the product code:
#: rows R 5..1, columns FM 1..5
GRID = {
    5: ("new", "potential-loyalists", "potential-loyalists", "champions", "champions"),
    4: ("new", "potential-loyalists", "potential-loyalists", "loyal", "loyal"),
    3: ("hibernating", "hibernating", "hibernating", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at-risk", "at-risk", "cant-lose"),
    1: ("lost", "lost", "at-risk", "at-risk", "cant-lose"),
}
