"""The built-in segments, named in the shop owners' own words (keys as in issue 5).

``high-ticket`` depends on the workspace: its members spent more than the
workspace's 80th percentile of spend among customers, so its definition is
made at query time by :func:`high_ticket` from that threshold
(see ``jornada.audience.queries.builtin_segment``).
"""

from __future__ import annotations

from jornada.audience.definition import SegmentDefinition
from jornada.contacts.state import cents_str

HIGH_TICKET = "high-ticket"
HIGH_TICKET_PERCENTILE = 80  # nearest-rank percentile of total spent among customers


def _inactive(days: int) -> SegmentDefinition:
    return SegmentDefinition(
        key=f"inactive-{days}d",
        name=f"Inactive for {days} days",
        description=f"Customers whose last order is more than {days} days old.",
        where={
            "all": [
                {"fact": "orders_count", "gte": 1},
                {"fact": "days_since_last_order", "gt": days},
            ]
        },
    )


BUILTINS: tuple[SegmentDefinition, ...] = (
    SegmentDefinition(
        key="new-customers",
        name="New customers",
        description="Exactly one order, placed within the last 30 days.",
        where={
            "all": [
                {"fact": "orders_count", "eq": 1},
                {"fact": "days_since_first_order", "lte": 30},
            ]
        },
    ),
    SegmentDefinition(
        key="recurring-customers",
        name="Recurring customers",
        description="Two or more orders not cancelled or refunded.",
        where={"fact": "orders_count", "gte": 2},
    ),
    _inactive(30),
    _inactive(60),
    _inactive(90),
    SegmentDefinition(
        key="cart-abandoners",
        name="Cart abandoners",
        description="An open cart: items added, no order since.",
        where={"fact": "has_open_cart", "eq": True},
    ),
    SegmentDefinition(
        key="never-bought",
        name="Subscribers who never bought",
        description="E-mail marketing consent granted and no order.",
        where={"all": [{"consent": "email_marketing"}, {"fact": "orders_count", "eq": 0}]},
    ),
    SegmentDefinition(
        key="b2b",
        name="B2B",
        description="Trait lead_type is b2b, or a company tax id (trait cnpj) is known.",
        where={"any": [{"trait": "lead_type", "eq": "b2b"}, {"trait": "cnpj", "exists": True}]},
    ),
)
KEYS: tuple[str, ...] = (*(d.key for d in BUILTINS), HIGH_TICKET)


def high_ticket(spend_cents: int, order_cents: int) -> SegmentDefinition:
    """``high-ticket`` for a workspace whose 80th percentiles of spend and of average order
    value are ``spend_cents`` and ``order_cents``."""
    return SegmentDefinition(
        key=HIGH_TICKET,
        name="High ticket",
        description=(
            f"Customers whose total spent or average order value is above the workspace's "
            f"{HIGH_TICKET_PERCENTILE}th percentile among customers (now {cents_str(spend_cents)} "
            f"and {cents_str(order_cents)})."
        ),
        where={
            "all": [
                {"fact": "orders_count", "gte": 1},
                {
                    "any": [
                        {"fact": "total_spent", "gt": cents_str(spend_cents)},
                        {"fact": "average_order_value", "gt": cents_str(order_cents)},
                    ]
                },
            ]
        },
    )
