"""RFM quintile bounds kept current as orders arrive, without ranking every customer again.

Each bound (the lowest value of quintiles 2 to 5 of a dimension, see
:mod:`jornada.audience.rfm`) is stored with ``below``: how many customers have
a strictly lower value. When a batch changes some customers' values, each change
moves ``below`` by at most one per bound, the count of customers per value
(``rfm_values``) is adjusted, and a bound whose ``below`` no longer fits its rank
steps to the next or previous value held by a customer: one primary-key lookup
per step, and bounds move a step or two per batch. The result is the bound a
full ranking gives, at every moment (``tests/audience/test_rfm_live.py``).

A workspace without stored bounds (before its first order, or right after the
migration) gets them computed in full by the first batch that changes an order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jornada.audience.models import RfmBounds, RfmValue
from jornada.audience.quintiles import Boundaries, lower_bounds, needed
from jornada.contacts import Contact
from jornada.contacts.actions import ContactBatch, OrderFacts
from jornada.db.bulk import Bulk

_PAGE = 256  # at most this many values read per query while a bound walks
_FIRST_PAGE = 4  # and this many by its first query
DIMENSIONS = ("r", "f", "m")  # last order (µs since the epoch), orders, cents spent
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: A customer as the RFM tables keep it: (id, last order, orders, cents spent).
Customer = tuple[str, datetime, int, int]
Values = tuple[int, int, int]  # one customer's value in each of DIMENSIONS


def micros(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _US


def from_micros(value: int) -> datetime:
    return _EPOCH + value * _US


def values_of(facts: OrderFacts | None) -> Values | None:
    """What RFM ranks of a contact; None when it is not a customer (no order, or merged)."""
    if facts is None or facts.merged or facts.orders_count < 1 or facts.last_order_at is None:
        return None
    return (micros(facts.last_order_at), facts.orders_count, facts.total_spent_cents)


# -- pure: one bound ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Bound:
    """A quintile's lower bound (None: no customer reaches the quintile) and how many customers
    are strictly below it (all of them, for None)."""

    value: int | None
    below: int

    def moved(self, changes: Iterable[tuple[int | None, int | None]]) -> Bound:
        """``below`` after customers' values changed (None: not a customer, before or after)."""
        below = self.below
        for old, new in changes:
            if old is not None and (self.value is None or old < self.value):
                below -= 1
            if new is not None and (self.value is None or new < self.value):
                below += 1
        return Bound(self.value, below)


#: Values held and how many customers hold each, walked from a value (excluded) up or down.
Walk = Callable[[int | None], Iterator[tuple[int, int]]]


@dataclass(frozen=True)
class Held:
    """The values customers hold in one dimension (the ``rfm_values`` table), as walks:
    ``up(v)`` ascending above ``v``, ``down(v)`` descending below ``v`` (None: from the top)."""

    count: Callable[[int], int]
    up: Walk
    down: Walk


def settle(bound: Bound, need: int, customers: int, held: Held) -> Bound:
    """The smallest value held with at least ``need`` customers below it, from ``bound``.

    Walks from the old bound to the new one; the walks read the values in pages, so
    a bound that moves far (a history imported in order) costs a few queries.
    """
    if customers == 0:
        return Bound(None, 0)
    value, below = bound.value, bound.below
    if value is None:  # from the top: the highest value has everyone else below it
        top = next(held.down(None), None)
        if top is None or customers - top[1] < need:
            return Bound(None, customers)
        value, below = top[0], customers - top[1]
    else:
        count = held.count(value)
        if count == 0:  # nobody holds it any more: the next value up has as many below
            following = next(held.up(value), None)
            if following is None:
                return settle(Bound(None, customers), need, customers, held)
            value, count = following
        if below < need:  # up: each value passed adds its customers to the next one's below
            below += count
            for higher, held_by in held.up(value):
                if below >= need:
                    value = higher
                    break
                below += held_by
            else:
                return Bound(None, customers)
    for lower, held_by in held.down(value):  # down while the value under still has enough below
        if below - held_by < need:
            break
        value, below = lower, below - held_by
    return Bound(value, below)


# -- the database ------------------------------------------------------------------------------
def customers_of(session: Session, workspace_id: str) -> list[Customer]:
    """One query: id, last order, orders and spend of every customer of the workspace."""
    rows = session.execute(
        select(
            Contact.id, Contact.last_order_at, Contact.orders_count, Contact.total_spent_cents
        ).where(
            Contact.workspace_id == workspace_id,
            Contact.merged_into_id.is_(None),
            Contact.orders_count >= 1,
            Contact.last_order_at.is_not(None),
        )
    )
    return [(i, at, n, cents) for i, at, n, cents in rows if at is not None]


def stored_boundaries(session: Session, workspace_id: str) -> Boundaries | None:
    """The workspace's bounds as its last batch left them; None when none are kept yet."""
    row = session.get(RfmBounds, workspace_id)
    if row is None:
        return None
    r, f, m = (tuple(v for v, _ in row.bounds[d]) for d in DIMENSIONS)
    return Boundaries(
        customers=row.customers,
        recency=tuple(None if v is None else from_micros(v) for v in r),
        frequency=f,
        monetary=m,
    )


def keep_rfm_current(
    session: Session, workspace_id: str, batch: ContactBatch, now: datetime
) -> None:
    """Move the stored bounds by the order facts ``batch`` changed (call it after its flush)."""
    changes: list[tuple[Values | None, Values | None]] = []
    for contact_id, before in batch.facts_before.items():
        state = batch.states.get(contact_id)
        old = values_of(before)
        new = values_of(OrderFacts.of(state)) if state is not None else None
        if old != new:
            changes.append((old, new))
    if not changes:
        return
    row = session.get(RfmBounds, workspace_id)
    if row is None:
        rebuild(session, workspace_id, now)
        return
    _count_values(session, workspace_id, changes)
    customers = row.customers + sum(new is not None for _, new in changes)
    customers -= sum(old is not None for old, _ in changes)
    bounds: dict[str, list[list[int | None]]] = {}
    for i, dimension in enumerate(DIMENSIONS):
        held = _held(session, workspace_id, dimension)
        moves = [
            (None if old is None else old[i], None if new is None else new[i])
            for old, new in changes
        ]
        settled = []
        for q, (value, below) in enumerate(row.bounds[dimension], start=2):
            bound = Bound(value, below).moved(moves)
            bound = settle(bound, needed(q, customers), customers, held)
            settled.append([bound.value, bound.below])
        bounds[dimension] = settled
    row.customers, row.bounds, row.updated_at = customers, bounds, now


def rebuild(session: Session, workspace_id: str, now: datetime) -> None:
    """Count every customer's values and rank them in full: the first time, or to repair."""
    customers = customers_of(session, workspace_id)
    columns: list[list[int]] = [
        sorted(micros(at) for _, at, _, _ in customers),
        sorted(n for _, _, n, _ in customers),
        sorted(cents for _, _, _, cents in customers),
    ]
    session.execute(delete(RfmValue).where(RfmValue.workspace_id == workspace_id))
    conn = session.connection()
    Bulk(conn.dialect.name).insert(
        conn,
        "rfm_values",
        ("workspace_id", "dimension", "value", "customers"),
        [
            (workspace_id, dimension, value, count)
            for dimension, column in zip(DIMENSIONS, columns, strict=True)
            for value, count in sorted(Counter(column).items())
        ],
    )
    bounds = {
        dimension: [
            [b, len(column) if b is None else bisect_left(column, b)] for b in lower_bounds(column)
        ]
        for dimension, column in zip(DIMENSIONS, columns, strict=True)
    }
    row = session.get(RfmBounds, workspace_id)
    if row is None:
        session.add(
            RfmBounds(
                workspace_id=workspace_id, customers=len(customers), bounds=bounds, updated_at=now
            )
        )
    else:
        row.customers, row.bounds, row.updated_at = len(customers), bounds, now
    session.flush()


def _count_values(
    session: Session, workspace_id: str, changes: Sequence[tuple[Values | None, Values | None]]
) -> None:
    """Add the changes to the per-value counts; a value nobody holds any more is dropped."""
    delta: Counter[tuple[str, int]] = Counter()
    for old, new in changes:
        for i, dimension in enumerate(DIMENSIONS):
            if old is not None:
                delta[(dimension, old[i])] -= 1
            if new is not None:
                delta[(dimension, new[i])] += 1
    conn = session.connection()
    mark = Bulk(conn.dialect.name).mark
    rows = [(workspace_id, d, v, n) for (d, v), n in sorted(delta.items()) if n]
    if rows:
        conn.exec_driver_sql(
            "INSERT INTO rfm_values (workspace_id, dimension, value, customers) "
            f"VALUES ({mark}, {mark}, {mark}, {mark}) "
            "ON CONFLICT (workspace_id, dimension, value) "
            "DO UPDATE SET customers = rfm_values.customers + excluded.customers",
            rows,
        )
    gone = [(workspace_id, d, v) for (d, v), n in sorted(delta.items()) if n < 0]
    if gone:
        conn.exec_driver_sql(
            f"DELETE FROM rfm_values WHERE workspace_id = {mark} AND dimension = {mark} "
            f"AND value = {mark} AND customers <= 0",
            gone,
        )


def _held(session: Session, workspace_id: str, dimension: str) -> Held:
    """Walks and counts on ``rfm_values`` for one dimension (primary-key order, pages of 256)."""
    conn = session.connection()
    bulk = Bulk(conn.dialect.name)  # a dozen small reads a batch: through the driver's cursor
    mark = bulk.mark
    where = f"workspace_id = {mark} AND dimension = {mark}"

    def count(value: int) -> int:
        sql = f"SELECT customers FROM rfm_values WHERE {where} AND value = {mark}"
        found = bulk.rows(conn, sql, (workspace_id, dimension, value))
        return int(found[0][0]) if found else 0

    def walk(start: int | None, ascending: bool) -> Iterator[tuple[int, int]]:
        order, compare = ("ASC", ">") if ascending else ("DESC", "<")
        size = _FIRST_PAGE  # a bound usually moves a step or two: read more only if it goes on
        while True:
            args: tuple[Any, ...] = (workspace_id, dimension)
            sql = f"SELECT value, customers FROM rfm_values WHERE {where}"
            if start is not None:
                sql += f" AND value {compare} {mark}"
                args += (start,)
            page = bulk.rows(conn, f"{sql} ORDER BY value {order} LIMIT {size}", args)
            for value, customers in page:
                yield int(value), int(customers)
            if len(page) < size:
                return
            start, size = int(page[-1][0]), min(size * 4, _PAGE)

    return Held(
        count=count,
        up=lambda value: walk(value, ascending=True),
        down=lambda value: walk(value, ascending=False),
    )
