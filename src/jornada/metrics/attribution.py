"""Pure: which orders a flow's messages earned, inside the attribution window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class AttributionWindow:
    """An order counts for a flow if it comes within ``after_click`` of a click on one of its
    messages, or within ``after_delivery`` of an open or a delivery of one of them."""

    after_click: timedelta = timedelta(days=5)
    after_delivery: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class Touch:
    contact_id: str
    at: datetime
    kind: str  # "click" | "open" | "delivery"


@dataclass(frozen=True)
class OrderFact:
    contact_id: str
    order_id: str
    at: datetime
    total_cents: int


def attribute(
    orders: list[OrderFact], touches: list[Touch], window: AttributionWindow
) -> list[OrderFact]:
    """The orders inside the window of a touch of the same contact (each order once)."""
    by_contact: dict[str, list[Touch]] = {}
    for touch in touches:
        by_contact.setdefault(touch.contact_id, []).append(touch)
    earned = []
    for order in orders:
        for touch in by_contact.get(order.contact_id, []):
            span = window.after_click if touch.kind == "click" else window.after_delivery
            if touch.at <= order.at <= touch.at + span:
                earned.append(order)
                break
    return earned
