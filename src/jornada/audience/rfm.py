"""RFM: recency, frequency and monetary quintiles per customer, and the named cells.

The customers of a workspace are its contacts with at least one order that are not
merged. Each of them gets three quintiles, 1 to 5, 5 the best:

* **R** ranks ``last_order_at`` (the more recent, the better), which is the same
  order as the days since the last order, so quintiles do not move with ``now``;
* **F** ranks ``orders_count`` (more is better);
* **M** ranks ``total_spent_cents`` (more is better).

Ties share the lower quintile: with ``n`` customers, a value's quintile is
``1 + floor(5 * below / n)``, where ``below`` is how many customers have a strictly
worse value. The result depends only on the values, never on row order. So when
most customers have one order, they are all F = 1, and the next value up jumps
straight to a high quintile.

A quintile is a step function of the value, so each dimension is summed up by the
four lower bounds of quintiles 2 to 5 (:class:`Boundaries`). A contact is placed by
comparing its values with them, and each named cell is a plain segment definition
made of ``last_order_at`` / ``orders_count`` / ``total_spent`` ranges, which the
segment compiler turns into SQL and a predicate like any other segment.

Cells come from R and FM = ``(F + M) // 2`` (:data:`CELLS`; the table is also in
docs/segments.md). The bounds are kept current as orders arrive by
:mod:`jornada.audience.rfm_live`; :func:`rfm_table` always ranks in full.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jornada.audience.definition import SegmentDefinition
from jornada.audience.quintiles import (
    Boundaries,
    grouped_lower_bounds,
    lower_bounds,
    needed,
    quintile,
)
from jornada.audience.rfm_live import Customer, customers_of, stored_boundaries
from jornada.contacts import Contact
from jornada.contacts.state import cents_str
from jornada.errors import NotFound

RFM_PREFIX = "rfm-"
CACHE_SECONDS = 60.0  # how long a workspace's boundaries are reused by rfm_for_contact / cells


@dataclass(frozen=True)
class Cell:
    """A named RFM cell: the union of ``(R range, FM range)`` boxes, bounds included."""

    key: str
    name: str
    boxes: tuple[tuple[tuple[int, int], tuple[int, int]], ...]

    @property
    def segment_key(self) -> str:
        return RFM_PREFIX + self.key


CELLS: tuple[Cell, ...] = (
    Cell("champions", "Champions", (((5, 5), (4, 5)),)),
    Cell("loyal", "Loyal", (((3, 4), (4, 5)),)),
    Cell("potential-loyalists", "Potential loyalists", (((4, 5), (2, 3)),)),
    Cell("new", "New", (((4, 5), (1, 1)),)),
    Cell("at-risk", "At risk", (((1, 2), (3, 4)),)),
    Cell("cant-lose", "Can't lose", (((1, 2), (5, 5)),)),
    Cell("hibernating", "Hibernating", (((3, 3), (1, 3)), ((2, 2), (1, 2)))),
    Cell("lost", "Lost", (((1, 1), (1, 2)),)),
)


_CELL_AT: dict[tuple[int, int], Cell] = {
    (r, fm): cell
    for cell in CELLS
    for (r_lo, r_hi), (fm_lo, fm_hi) in cell.boxes
    for r in range(r_lo, r_hi + 1)
    for fm in range(fm_lo, fm_hi + 1)
}


def cell_of(r: int, fm: int) -> Cell:
    """The cell of an R quintile and an FM score (every one of the 25 pairs has exactly one)."""
    return _CELL_AT[(r, fm)]


def fm_score(f: int, m: int) -> int:
    """FM: the mean of F and M, rounded down."""
    return (f + m) // 2


@dataclass(frozen=True)
class RFM:
    """One customer's quintiles and cell (``cell`` is the cell key, e.g. ``champions``)."""

    r: int
    f: int
    m: int
    cell: str

    def view(self) -> dict[str, Any]:
        return {"r": self.r, "f": self.f, "m": self.m, "cell": self.cell}


@dataclass(frozen=True)
class RFMRow:
    """A line of :func:`rfm_table`."""

    contact_id: str
    recency_days: int
    orders_count: int
    total_spent_cents: int
    rfm: RFM


def place(
    bounds: Boundaries, last_order_at: datetime, orders_count: int, total_spent_cents: int
) -> RFM:
    r = quintile(last_order_at, bounds.recency)
    f = quintile(orders_count, bounds.frequency)
    m = quintile(total_spent_cents, bounds.monetary)
    return RFM(r, f, m, cell_of(r, fm_score(f, m)).key)


# -- the database ----------------------------------------------------------------------------
def _boundaries(customers: list[Customer]) -> Boundaries:
    return Boundaries(
        customers=len(customers),
        recency=lower_bounds(sorted(c[1] for c in customers)),
        frequency=lower_bounds(sorted(c[2] for c in customers)),
        monetary=lower_bounds(sorted(c[3] for c in customers)),
    )


_cache: dict[tuple[str, str], tuple[float, Boundaries]] = {}


def _cache_key(session: Session, workspace_id: str) -> tuple[str, str]:
    return (str(session.get_bind().engine.url), workspace_id)


def rfm_boundaries(
    session: Session, workspace_id: str, *, max_age: float = CACHE_SECONDS
) -> Boundaries:
    """The workspace's quintile bounds as its last batch left them (see :mod:`.rfm_live`).

    A workspace that never had an order since they are kept gets a full computation,
    reused for ``max_age`` seconds (0 recomputes).
    """
    stored = stored_boundaries(session, workspace_id)
    if stored is not None:
        return stored
    key = _cache_key(session, workspace_id)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1]
    bounds = ranked_boundaries(session, workspace_id)
    _cache[key] = (time.monotonic(), bounds)
    return bounds


def ranked_boundaries(session: Session, workspace_id: str) -> Boundaries:
    """The bounds computed afresh from every customer's values (a full recomputation).

    Nothing is read row by row: order counts come grouped (a handful of values);
    recency and spend are read at each quintile's rank (``OFFSET``) in the partial
    indexes of customers kept in that order (``ix_contacts_recency``,
    ``ix_contacts_spend``), then the first value above it, as ties share a quintile.
    On a million contacts this is about a fifth of sorting every customer's values.
    """
    customer = (
        Contact.workspace_id == workspace_id,
        Contact.merged_into_id.is_(None),
        Contact.orders_count >= 1,
        Contact.last_order_at.is_not(None),
    )
    counts = session.execute(
        select(Contact.orders_count, func.count())
        .where(*customer)
        .group_by(Contact.orders_count)
        .order_by(Contact.orders_count)
    ).all()
    customers = sum(count for _, count in counts)

    def at_ranks(column: Any, index: str) -> tuple[Any, ...]:
        bounds: list[Any] = []
        for q in range(2, 6):
            need = needed(q, customers)
            if need == 0:
                bounds.append(None)
                continue
            below = session.scalar(
                select(column)
                .with_hint(Contact, f"INDEXED BY {index}", "sqlite")  # no statistics there
                .where(*customer)
                .order_by(column)
                .offset(need - 1)
                .limit(1)
            )
            bounds.append(session.scalar(select(func.min(column)).where(*customer, column > below)))
        return tuple(bounds)

    return Boundaries(
        customers=customers,
        recency=at_ranks(Contact.last_order_at, "ix_contacts_recency"),
        frequency=grouped_lower_bounds([(value, count) for value, count in counts]),
        monetary=at_ranks(Contact.total_spent_cents, "ix_contacts_spend"),
    )


def clear_cache() -> None:
    """Forget every cached boundary (tests, or after a bulk import)."""
    _cache.clear()


def rfm_table(session: Session, workspace_id: str, now: datetime) -> list[RFMRow]:
    """Every customer of the workspace with its RFM, by contact id; always computed afresh."""
    customers = customers_of(session, workspace_id)
    bounds = _boundaries(customers)
    _cache[_cache_key(session, workspace_id)] = (time.monotonic(), bounds)
    return [
        RFMRow(cid, (now - at).days, n, cents, place(bounds, at, n, cents))
        for cid, at, n, cents in sorted(customers)
    ]


def rfm_for_contact(
    session: Session, workspace_id: str, contact_id: str, now: datetime
) -> RFM | None:
    """One contact's RFM against the workspace's (cached) bounds; None without orders.

    ``now`` is not needed by the quintiles (recency ranks the last order time) and is
    kept so callers do not depend on that.
    """
    del now
    contact = session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != workspace_id:
        return None
    if contact.merged_into_id or contact.orders_count < 1 or contact.last_order_at is None:
        return None
    bounds = rfm_boundaries(session, workspace_id)
    return place(bounds, contact.last_order_at, contact.orders_count, contact.total_spent_cents)


# -- the cells as segments -------------------------------------------------------------------
_NEVER: dict[str, Any] = {
    "all": [{"fact": "orders_count", "gte": 1}, {"fact": "orders_count", "lt": 1}]
}


def _range(
    fact: str,
    bounds: tuple[Any, ...],
    low: int,
    high: int,
    render: Callable[[Any], Any],
) -> dict[str, Any] | None:
    """``fact`` in quintiles ``low..high``; None when that range holds no possible value."""
    lower = bounds[low - 2] if low >= 2 else None
    upper = bounds[high - 1] if high <= 4 else None  # the lower bound of quintile high + 1
    if low >= 2 and lower is None:
        return None
    if lower is not None and upper is not None and not lower < upper:
        return None
    condition: dict[str, Any] = {"fact": fact}
    if lower is not None:
        condition["gte"] = render(lower)
    if upper is not None:
        condition["lt"] = render(upper)
    return condition if len(condition) > 1 else {}


def _cell_where(cell: Cell, bounds: Boundaries) -> dict[str, Any]:
    boxes: list[dict[str, Any]] = []
    for (r_lo, r_hi), (fm_lo, fm_hi) in cell.boxes:
        recency = _range("last_order_at", bounds.recency, r_lo, r_hi, datetime.isoformat)
        for f in range(1, 6):
            m_lo, m_hi = max(1, 2 * fm_lo - f), min(5, 2 * fm_hi + 1 - f)
            if m_lo > m_hi:
                continue
            frequency = _range("orders_count", bounds.frequency, f, f, int)
            monetary = _range("total_spent", bounds.monetary, m_lo, m_hi, cents_str)
            parts = (recency, frequency, monetary)
            if any(p is None for p in parts):
                continue
            boxes.append({"all": [{"fact": "orders_count", "gte": 1}, *(p for p in parts if p)]})
    if not boxes or bounds.customers == 0:
        return _NEVER
    return boxes[0] if len(boxes) == 1 else {"any": boxes}


def rfm_segment(session: Session, workspace_id: str, key: str) -> SegmentDefinition:
    """The segment ``rfm-<cell>`` for this workspace, from its current bounds; 404 otherwise."""
    for cell in CELLS:
        if cell.segment_key == key:
            return SegmentDefinition(
                key=cell.segment_key,
                name=f"RFM: {cell.name}",
                description=(
                    f"Customers in the RFM cell {cell.name} ({_describe(cell)}), "
                    "with this workspace's quintile bounds."
                ),
                where=_cell_where(cell, rfm_boundaries(session, workspace_id)),
            )
    raise NotFound(f"no segment with key {key!r}", field="key")


def rfm_segments(session: Session, workspace_id: str) -> list[SegmentDefinition]:
    return [rfm_segment(session, workspace_id, cell.segment_key) for cell in CELLS]


def _describe(cell: Cell) -> str:
    def span(lo: int, hi: int) -> str:
        return str(lo) if lo == hi else f"{lo}-{hi}"

    return " or ".join(f"R {span(*r)} and FM {span(*fm)}" for r, fm in cell.boxes)
