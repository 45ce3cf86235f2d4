"""Frequently bought together: products that share orders, for cross-sell messages.

The core is pure: :func:`co_occurrence` counts, over ``Order Completed``
baskets, how many orders hold each pair of products, and :func:`related`
ranks the products most often bought with some given ones. The shell,
:func:`frequently_bought_together`, builds that table from a workspace's most
recent orders and keeps it in a small per-process cache, rebuilt when the
workspace's order count changes (checked every :data:`RECHECK`) or after
:data:`CACHE_TTL`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jornada.contacts.models import Contact
from jornada.contacts.state import cents_str, to_cents
from jornada.events import canonical as ev
from jornada.events.models import Event

Product = dict[str, Any]  # product_id, and name, price, url, image_url when known

ORDER_WINDOW: Final = 20_000  # most recent orders a workspace's table is built from
CACHE_TTL: Final = timedelta(minutes=5)  # a table is rebuilt at least this often
RECHECK: Final = timedelta(seconds=30)  # a table is trusted this long without counting orders
MAX_BASKET: Final = 50  # an order with more distinct products (wholesale) adds no pairs
_MAX_WORKSPACES: Final = 64  # tables kept per process; the oldest built is dropped first
_TEXT_FIELDS: Final = ("name", "url", "image_url")


@dataclass(frozen=True)
class CoOccurrence:
    """How many orders hold each pair of products, and the latest details seen of each product.

    ``pairs[a][b] == pairs[b][a]`` is the number of orders with both ``a`` and ``b``.
    """

    pairs: Mapping[str, Mapping[str, int]]
    products: Mapping[str, Product]

    def count(self, a: str, b: str) -> int:
        """Orders that hold both ``a`` and ``b``."""
        return self.pairs.get(a, {}).get(b, 0)


def _product_id(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def product_ids(properties: Mapping[str, Any]) -> list[str]:
    """The products an event is about: ``products[*].product_id``, else ``product_id`` (or ``sku``)."""
    found: dict[str, None] = {}
    products = properties.get("products")
    if isinstance(products, list):
        for item in products:
            if isinstance(item, Mapping) and (pid := _product_id(item.get("product_id"))):
                found[pid] = None
    if not found and (pid := _product_id(properties.get("product_id") or properties.get("sku"))):
        found[pid] = None
    return list(found)


@lru_cache(maxsize=4096)
def _price(value: str | int | float) -> str | None:
    """A price as a decimal string, or None when it is not a non-negative amount."""
    cents = to_cents(value)
    return cents_str(cents) if cents is not None and cents >= 0 else None


def _merge_details(known: Product, item: Mapping[str, Any]) -> None:
    """Newer values replace older ones; a value that is absent or unusable keeps the old one.

    Prices become decimal strings (so ``money`` always formats them) and links
    must be http(s), so nothing odd reaches an ``href``.
    """
    for name in _TEXT_FIELDS:
        value = item.get(name)
        if not isinstance(value, str) or not (value := value.strip()):
            continue
        if name != "name" and not value.startswith(("https://", "http://")):
            continue
        known[name] = value
    price = item.get("price")
    hashable = isinstance(price, str | int | float) and not isinstance(price, bool)
    if hashable and (shown := _price(price)) is not None:
        known["price"] = shown


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple | Sequence) and not isinstance(value, str | bytes)


def co_occurrence(baskets: Iterable[Sequence[Mapping[str, Any]]]) -> CoOccurrence:
    """Count, for each pair of products, the orders that hold both.

    ``baskets`` are orders' ``products`` lists, oldest first: a product's details
    are the latest seen. A product on two lines of one order counts once; an
    order with a single product (or more than :data:`MAX_BASKET`) adds no pair;
    entries without a ``product_id`` are skipped.
    """
    pairs: dict[str, dict[str, int]] = {}
    products: dict[str, Product] = {}
    merged: dict[str, Mapping[str, Any]] = {}  # the entry last merged, per product
    for basket in baskets:
        if not _is_list(basket):  # the baskets come from stored JSON: anything may be there
            continue
        ids: dict[str, None] = {}
        for item in basket:
            if not isinstance(item, dict | Mapping):
                continue
            pid = _product_id(item.get("product_id"))
            if pid is None:
                continue
            ids[pid] = None
            if merged.get(pid) != item:  # most entries repeat the last: skip the work
                _merge_details(products.setdefault(pid, {"product_id": pid}), item)
                merged[pid] = item
        if not 2 <= len(ids) <= MAX_BASKET:
            continue
        for pid in ids:
            row = pairs.setdefault(pid, {})
            for other in ids:
                if other != pid:
                    row[other] = row.get(other, 0) + 1
    return CoOccurrence(pairs=pairs, products=products)


def related(
    table: CoOccurrence,
    product_ids: Iterable[str],
    limit: int = 3,
    *,
    named_only: bool = False,
) -> list[Product]:
    """The products most often bought together with any of ``product_ids``, those excluded.

    A candidate's score is the number of orders it shares with each given
    product, summed; ties go to the smaller ``product_id``. ``named_only``
    leaves out products whose name was never seen (they cannot be shown to a
    customer). Each result is a copy, safe to hand to a template.
    """
    seeds = set(product_ids)
    scores: Counter[str] = Counter()
    for seed in seeds:
        for other, count in table.pairs.get(seed, {}).items():
            if other not in seeds:
                scores[other] += count
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    found: list[Product] = []
    for pid, _ in ranked:
        if len(found) >= limit:
            break
        details = table.products.get(pid, {"product_id": pid})
        if named_only and "name" not in details:
            continue
        found.append(dict(details))
    return found


# -- the shell: a workspace's orders, cached per process -----------------------------------


@dataclass(frozen=True)
class _Entry:
    table: CoOccurrence
    orders: int  # the workspace's Order Completed count when the table was built
    built_at: datetime
    checked_at: datetime  # when ``orders`` was last found to be still the count


_CACHE: dict[str, _Entry] = {}
_LOCK = threading.Lock()


def _order_count(session: Session, workspace_id: str) -> int:
    query = (
        select(func.count())
        .select_from(Event)
        .where(Event.workspace_id == workspace_id, Event.event == ev.ORDER_COMPLETED)
    )
    return int(session.scalar(query) or 0)


def _baskets(session: Session, workspace_id: str) -> list[Any]:
    """The ``products`` of the workspace's latest :data:`ORDER_WINDOW` orders, oldest first."""
    rows = session.scalars(
        select(Event.properties)
        .where(Event.workspace_id == workspace_id, Event.event == ev.ORDER_COMPLETED)
        .order_by(Event.timestamp.desc(), Event.id.desc())
        .limit(ORDER_WINDOW)
    ).all()
    return [props.get("products") for props in reversed(rows) if isinstance(props, dict)]


def _table(session: Session, workspace_id: str, now: datetime) -> CoOccurrence:
    """The workspace's table: cached, rebuilt after :data:`CACHE_TTL` or when orders came in.

    The order count (one index scan) is checked at most every :data:`RECHECK`,
    so a campaign of thousands of messages costs a handful of counts.
    """
    with _LOCK:
        entry = _CACHE.get(workspace_id)
    if entry is not None and entry.built_at <= now < entry.built_at + CACHE_TTL:
        if entry.checked_at <= now < entry.checked_at + RECHECK:
            return entry.table
        orders = _order_count(session, workspace_id)
        if orders == entry.orders:
            with _LOCK:
                if _CACHE.get(workspace_id) is entry:
                    _CACHE[workspace_id] = replace(entry, checked_at=now)
            return entry.table
    else:
        orders = _order_count(session, workspace_id)
    # counted before reading: an order arriving in between only causes one more rebuild
    table = co_occurrence(_baskets(session, workspace_id))
    with _LOCK:  # two threads may build the same table; either result is right
        _CACHE[workspace_id] = _Entry(table, orders, built_at=now, checked_at=now)
        while len(_CACHE) > _MAX_WORKSPACES:
            del _CACHE[min(_CACHE, key=lambda key: _CACHE[key].built_at)]
    return table


def frequently_bought_together(
    session: Session,
    workspace_id: str,
    product_ids: Iterable[str],
    *,
    limit: int = 3,
    now: datetime,
) -> list[Product]:
    """Up to ``limit`` named products of this workspace most often ordered with ``product_ids``.

    Reads only this workspace's ``Order Completed`` events (the latest
    :data:`ORDER_WINDOW`), through the per-process cache: new orders are seen
    within :data:`RECHECK`, anything else within :data:`CACHE_TTL`.
    """
    seeds = [pid for pid in (_product_id(p) for p in product_ids) if pid]
    if not seeds or limit <= 0:
        return []
    return related(_table(session, workspace_id, now), seeds, limit, named_only=True)


def last_order_products(session: Session, workspace_id: str, contact_id: str) -> list[str]:
    """The product ids of the contact's latest ``Order Completed`` event, if any."""
    properties = session.scalar(
        select(Event.properties)
        .where(
            Event.workspace_id == workspace_id,
            Event.contact_id == contact_id,
            Event.event == ev.ORDER_COMPLETED,
        )
        .order_by(Event.timestamp.desc(), Event.id.desc())
        .limit(1)
    )
    return product_ids(properties) if isinstance(properties, dict) else []


def recommended_for(
    session: Session,
    contact: Contact,
    trigger: Mapping[str, Any],
    *,
    limit: int = 3,
    now: datetime,
) -> list[Product]:
    """What to suggest to ``contact``: products bought with the trigger's products.

    Without products in the trigger (the event that started the flow), those
    of the contact's last order; without an order, the last product viewed.
    """
    seeds = product_ids(trigger)
    if not seeds and contact.orders_count:
        seeds = last_order_products(session, contact.workspace_id, contact.id)
    if not seeds and contact.last_product_viewed:
        seeds = product_ids(contact.last_product_viewed)
    return frequently_bought_together(session, contact.workspace_id, seeds, limit=limit, now=now)
