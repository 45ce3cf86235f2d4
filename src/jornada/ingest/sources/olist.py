"""Olist's CSV export → Segment messages, so a store's real history can seed Jornada.

Olist (the Brazilian marketplace dataset) is the closest public thing to a
store's order history: people, orders, items, payments (boleto included) and
reviews. This module reads a directory in Olist's own layout, each table as
``name.csv`` or ``name.csv.gz``, and yields the exact Segment HTTP Tracking API
messages a store would have sent, so the import goes through the same
validation and de-duplication as live traffic.

Per order, in time order: ``Order Completed``; ``Boleto Issued`` and then
``Boleto Paid`` or ``Boleto Expired`` for each boleto payment; ``Order
Cancelled`` for canceled or unavailable orders; ``Order Shipped``; ``Order
Delivered``; one ``Survey Answered`` per review. A person's ``identify`` comes
just before their first event. Message ids are derived from Olist's ids, so
importing the same export twice adds nothing.

Olist timestamps are local time in São Paulo, which had daylight saving time
until 2019; they come out as ISO 8601 with the offset of their day.

Memory stays bounded: the orders table is streamed row by row; the other
tables are held as compact tuples keyed by id (well under 500 MB for Olist's
full 100k orders).
"""

from __future__ import annotations

import csv
import gzip
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from jornada.errors import InvalidInput
from jornada.events import canonical

__all__ = ["RowProblem", "count_orders", "read_olist"]

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
CURRENCY = "BRL"
BOLETO_DAYS = 3  # Olist's boletos fall due three days after the purchase
CANCELLED_STATUSES = frozenset({"canceled", "unavailable"})

ORDERS = "olist_orders_dataset"
CUSTOMERS = "olist_customers_dataset"
ITEMS = "olist_order_items_dataset"
PAYMENTS = "olist_order_payments_dataset"
REVIEWS = "olist_order_reviews_dataset"
PRODUCTS = "olist_products_dataset"
TRANSLATION = "product_category_name_translation"

_T = TypeVar("_T")
_CENT = Decimal("0.01")
_END_OF_DAY = time(23, 59, 59)


@dataclass(frozen=True)
class RowProblem:
    """A row left out of the import, and where and why, so the user can fix the file."""

    file: str  # file name, e.g. "olist_orders_dataset.csv"
    line: int  # 1-based physical line where the row starts (the header is line 1)
    reason: str  # names the column, e.g. "payment_value: 'abc' is not a number"


class _BadValue(Exception):
    """A cell that cannot be read; the message names its column."""


class _Customer(NamedTuple):
    unique_id: str
    zip_prefix: str
    city: str
    state: str


class _Item(NamedTuple):
    number: int
    product_id: str
    seller_id: str | None
    price: int  # cents
    freight: int  # cents


class _Payment(NamedTuple):
    sequential: int
    type: str
    installments: int
    value: int  # cents


class _Order(NamedTuple):
    order_id: str
    user_id: str
    status: str
    purchased: datetime
    approved: datetime | None
    shipped: datetime | None
    delivered: datetime | None


class _Review(NamedTuple):
    review_id: str
    score: int
    title: str | None
    comment: str | None
    at: datetime


# -- files -------------------------------------------------------------------------------
def _find(directory: Path, name: str) -> Path | None:
    for suffix in (".csv", ".csv.gz"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def _required_tables(directory: Path) -> tuple[Path, Path]:
    """Orders and customers are the least an import needs; say which are missing and where."""
    orders, customers = _find(directory, ORDERS), _find(directory, CUSTOMERS)
    if orders is None or customers is None:
        missing = [n for n, p in ((ORDERS, orders), (CUSTOMERS, customers)) if p is None]
        expected = " and ".join(f"{n}.csv (or {n}.csv.gz)" for n in missing)
        raise FileNotFoundError(f"{directory} is not a complete Olist export: expected {expected}")
    return orders, customers


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _rows(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...], problems: list[RowProblem]
) -> Iterator[tuple[int, list[str]]]:
    """Each row's values for ``required + optional`` (by header name) and the line it starts on.

    Quoted review comments span lines, so the line is counted from the
    reader, not from the row number. A column only in ``optional`` may be
    absent from the header; its value is then "".
    """
    with _open(path) as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise InvalidInput(
                f"{path.name} has no column {', '.join(map(repr, missing))}; "
                f"its columns are {', '.join(header) or '(none)'}",
                field=missing[0],
            )
        index = [header.index(name) if name in header else -1 for name in (*required, *optional)]
        width = len(header)
        previous = reader.line_num
        for fields in reader:
            line, previous = previous + 1, reader.line_num
            if not fields:
                continue  # a blank line is no row
            if len(fields) != width:
                reason = f"has {len(fields)} fields, the header has {width}"
                problems.append(RowProblem(path.name, line, reason))
                continue
            yield line, [fields[i] if i >= 0 else "" for i in index]


# -- cells -------------------------------------------------------------------------------
def _present(column: str, value: str) -> str:
    if not value:
        raise _BadValue(f"{column}: missing")
    return value


def _money(column: str, value: str) -> int:
    """Whole cents: exact sums, and a third of a Decimal's memory for 100k orders' amounts."""
    try:
        amount = Decimal(_present(column, value))
        if not amount.is_finite() or amount < 0:
            raise _BadValue(f"{column}: {value!r} is not an amount of money")
        return int(amount.quantize(_CENT) * 100)
    except InvalidOperation:
        raise _BadValue(f"{column}: {value!r} is not a number") from None


def _integer(column: str, value: str, low: int, high: int | None = None) -> int:
    try:
        number = int(_present(column, value))
    except ValueError:
        raise _BadValue(f"{column}: {value!r} is not a whole number") from None
    if number < low or (high is not None and number > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise _BadValue(f"{column}: {number} is not {bounds}")
    return number


def _when(column: str, value: str) -> datetime:
    """Olist's local São Paulo time ("2017-07-09 21:57:05"), made aware of its offset."""
    try:
        parsed = datetime.fromisoformat(_present(column, value))
    except ValueError:
        raise _BadValue(f"{column}: {value!r} is not a timestamp (YYYY-MM-DD HH:MM:SS)") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=SAO_PAULO)
    return parsed.astimezone(SAO_PAULO)


def _maybe_when(column: str, value: str) -> datetime | None:
    return _when(column, value) if value else None


def _text(value: str) -> str | None:
    value = value.strip()
    return value or None


def _decimal_str(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# -- tables held in memory ---------------------------------------------------------------
def _load_customers(path: Path, problems: list[RowProblem]) -> dict[str, _Customer]:
    customers: dict[str, _Customer] = {}
    required = ("customer_id", "customer_unique_id")
    optional = ("customer_zip_code_prefix", "customer_city", "customer_state")
    for line, (customer_id, unique_id, zip_prefix, city, state) in _rows(
        path, required, optional, problems
    ):
        try:
            _present("customer_id", customer_id)
            _present("customer_unique_id", unique_id)
        except _BadValue as exc:
            problems.append(RowProblem(path.name, line, str(exc)))
            continue
        customers[customer_id] = _Customer(
            unique_id, zip_prefix.strip(), sys.intern(city.strip()), sys.intern(state.strip())
        )
    return customers


def _load_items(path: Path, problems: list[RowProblem]) -> dict[str, tuple[_Item, ...]]:
    items: dict[str, tuple[_Item, ...]] = {}
    required = ("order_id", "product_id", "price")
    optional = ("order_item_id", "seller_id", "freight_value")
    for line, (order_id, product_id, price, number, seller_id, freight) in _rows(
        path, required, optional, problems
    ):
        try:
            item = _Item(
                _integer("order_item_id", number, 1) if number else 0,
                sys.intern(_present("product_id", product_id)),
                sys.intern(seller_id) if seller_id else None,
                _money("price", price),
                _money("freight_value", freight) if freight else 0,
            )
            key = sys.intern(_present("order_id", order_id))
            items[key] = (*items.get(key, ()), item)
        except _BadValue as exc:
            problems.append(RowProblem(path.name, line, str(exc)))
    return items


def _load_payments(path: Path, problems: list[RowProblem]) -> dict[str, tuple[_Payment, ...]]:
    payments: dict[str, tuple[_Payment, ...]] = {}
    required = (
        "order_id",
        "payment_sequential",
        "payment_type",
        "payment_installments",
        "payment_value",
    )
    for line, (order_id, sequential, kind, installments, value) in _rows(
        path, required, (), problems
    ):
        try:
            payment = _Payment(
                _integer("payment_sequential", sequential, 1),
                sys.intern(_present("payment_type", kind)),
                _integer("payment_installments", installments, 0),
                _money("payment_value", value),
            )
            key = sys.intern(_present("order_id", order_id))
            payments[key] = (*payments.get(key, ()), payment)
        except _BadValue as exc:
            problems.append(RowProblem(path.name, line, str(exc)))
    return payments


def _load_reviews(path: Path, problems: list[RowProblem]) -> dict[str, tuple[_Review, ...]]:
    reviews: dict[str, tuple[_Review, ...]] = {}
    required = ("review_id", "order_id", "review_score", "review_creation_date")
    optional = ("review_comment_title", "review_comment_message", "review_answer_timestamp")
    for line, (review_id, order_id, score, created, title, comment, answered) in _rows(
        path, required, optional, problems
    ):
        try:
            created_at = _when("review_creation_date", created)
            review = _Review(
                _present("review_id", review_id),
                _integer("review_score", score, 1, 5),
                _text(title),
                _text(comment),
                _maybe_when("review_answer_timestamp", answered) or created_at,
            )
            key = sys.intern(_present("order_id", order_id))
            reviews[key] = (*reviews.get(key, ()), review)
        except _BadValue as exc:
            problems.append(RowProblem(path.name, line, str(exc)))
    return reviews


def _load_products(path: Path, problems: list[RowProblem]) -> dict[str, str | None]:
    products: dict[str, str | None] = {}
    for line, (product_id, category) in _rows(
        path, ("product_id", "product_category_name"), (), problems
    ):
        if not product_id:
            problems.append(RowProblem(path.name, line, "product_id: missing"))
            continue
        products[sys.intern(product_id)] = sys.intern(category) if category else None
    return products


def _load_translation(path: Path, problems: list[RowProblem]) -> dict[str, str]:
    columns = ("product_category_name", "product_category_name_english")
    translation: dict[str, str] = {}
    for line, (portuguese, english) in _rows(path, columns, (), problems):
        if not portuguese or not english:
            column = columns[0] if not portuguese else columns[1]
            problems.append(RowProblem(path.name, line, f"{column}: missing"))
            continue
        translation[portuguese] = english
    return translation


# -- public ------------------------------------------------------------------------------
def count_orders(directory: Path) -> int:
    """Data lines of the orders table, counted as bytes, so a progress bar knows its total early."""
    orders, _ = _required_tables(directory)
    newlines, last = 0, b"\n"
    opener = gzip.open if orders.name.endswith(".gz") else open
    with opener(orders, "rb") as handle:
        while chunk := handle.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    lines = newlines + (last != b"\n")
    return max(lines - 1, 0)


def read_olist(directory: Path, problems: list[RowProblem]) -> Iterator[dict[str, Any]]:
    """Segment messages for every order in an Olist export, in the orders table's order.

    Rows that cannot be read are appended to ``problems`` and left out; the
    rest still comes out. Raises ``FileNotFoundError`` at once, before any
    reading, when the orders or customers table is missing, and
    ``InvalidInput`` while reading when a table's header lacks a column the
    events need (a wrong file, not a bad row).
    """
    orders, customers = _required_tables(directory)
    return _messages(directory, orders, customers, problems)


def _messages(
    directory: Path, orders_path: Path, customers_path: Path, problems: list[RowProblem]
) -> Iterator[dict[str, Any]]:
    customers = _load_customers(customers_path, problems)
    items = _load_optional(directory, ITEMS, _load_items, problems)
    payments = _load_optional(directory, PAYMENTS, _load_payments, problems)
    reviews = _load_optional(directory, REVIEWS, _load_reviews, problems)
    products = _load_optional(directory, PRODUCTS, _load_products, problems)
    translation = _load_optional(directory, TRANSLATION, _load_translation, problems)
    identified: set[str] = set()
    required = ("order_id", "customer_id", "order_status", "order_purchase_timestamp")
    optional = (
        "order_approved_at",
        "order_delivered_carrier_date",
        "order_delivered_customer_date",
    )
    for line, values in _rows(orders_path, required, optional, problems):
        order_id, customer_id, status, purchased, approved, shipped, delivered = values
        try:
            _present("order_id", order_id)
            _present("order_status", status)
            customer = customers.get(_present("customer_id", customer_id))
            if customer is None:
                raise _BadValue(
                    f"customer_id: {customer_id!r} has no readable row in {customers_path.name}"
                )
            order = _Order(
                order_id,
                customer.unique_id,
                status,
                _when("order_purchase_timestamp", purchased),
                _maybe_when("order_approved_at", approved),
                _maybe_when("order_delivered_carrier_date", shipped),
                _maybe_when("order_delivered_customer_date", delivered),
            )
        except _BadValue as exc:
            problems.append(RowProblem(orders_path.name, line, str(exc)))
            continue
        if customer.unique_id not in identified:
            identified.add(customer.unique_id)
            yield _identify(customer, order.purchased)
        yield from _order_events(
            order,
            items.get(order_id, ()),
            payments.get(order_id, ()),
            reviews.get(order_id, ()),
            products,
            translation,
        )


def _load_optional(
    directory: Path,
    name: str,
    load: Callable[[Path, list[RowProblem]], dict[str, _T]],
    problems: list[RowProblem],
) -> dict[str, _T]:
    """A table the export may lack: then its part of the events is simply absent."""
    path = _find(directory, name)
    return {} if path is None else load(path, problems)


def _identify(customer: _Customer, at: datetime) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    if customer.city:
        traits["city"] = customer.city
    if customer.state:
        traits["state"] = customer.state
    if customer.zip_prefix:
        traits["zip_prefix"] = customer.zip_prefix
    traits["country"] = "BR"
    return {
        "type": "identify",
        "messageId": f"olist:identify:{customer.unique_id}",
        "userId": customer.unique_id,
        "timestamp": at.isoformat(),
        "traits": traits,
    }


def _products(
    items: tuple[_Item, ...], products: dict[str, str | None], translation: dict[str, str]
) -> list[dict[str, Any]]:
    """One entry per product: ``price`` per unit, ``freight`` for all its units.

    Olist has one item row per unit and splits the order's freight over them.
    """
    lines: dict[str, list[_Item]] = {}
    for item in sorted(items, key=lambda i: i.number):
        lines.setdefault(item.product_id, []).append(item)
    entries: list[dict[str, Any]] = []
    for product_id, rows in lines.items():
        category = products.get(product_id)
        entries.append(
            {
                "product_id": product_id,
                "quantity": len(rows),
                "price": _decimal_str(_unit_price(rows)),
                "freight": _decimal_str(sum(r.freight for r in rows)),
                "category": category,
                "category_en": translation.get(category) if category else None,
                "seller_id": rows[0].seller_id,
            }
        )
    return entries


def _unit_price(rows: list[_Item]) -> int:
    """Olist's units of one product in an order share a price; else their mean, half up."""
    total = sum(r.price for r in rows)
    return (2 * total + len(rows)) // (2 * len(rows))


def _order_events(
    order: _Order,
    items: tuple[_Item, ...],
    payments: tuple[_Payment, ...],
    reviews: tuple[_Review, ...],
    products: dict[str, str | None],
    translation: dict[str, str],
) -> list[dict[str, Any]]:
    """An order's events, earliest first; on equal times, in the order a store would send them."""
    order_id = order.order_id
    events: list[tuple[datetime, dict[str, Any]]] = []

    def track(event: str, suffix: str, at: datetime, properties: dict[str, Any]) -> None:
        message = {
            "type": "track",
            "messageId": f"olist:{order_id}:{suffix}",
            "userId": order.user_id,
            "event": event,
            "timestamp": at.isoformat(),
            "properties": properties,
        }
        events.append((at, message))

    payments = tuple(sorted(payments, key=lambda p: p.sequential))
    if payments:
        total = _decimal_str(sum(p.value for p in payments))
    else:  # no payment rows: Olist's own total is goods plus freight
        total = _decimal_str(sum(i.price + i.freight for i in items))
    track(
        canonical.ORDER_COMPLETED,
        "completed",
        order.purchased,
        {
            "order_id": order_id,
            "total": total,
            "currency": CURRENCY,
            "products": _products(items, products, translation),
            "payments": [
                {
                    "type": p.type,
                    "installments": p.installments,
                    "value": _decimal_str(p.value),
                    "sequential": p.sequential,
                }
                for p in payments
            ],
            # the first payment decides the method, as the shopper chose it at checkout
            "payment_method": payments[0].type if payments else None,
            "status": order.status,
        },
    )
    due = order.purchased.date() + timedelta(days=BOLETO_DAYS)
    for payment in payments:
        if payment.type != "boleto":
            continue
        amount, seq = _decimal_str(payment.value), payment.sequential
        track(
            canonical.BOLETO_ISSUED,
            f"boleto-issued:{seq}",
            order.purchased,
            {"order_id": order_id, "amount": amount, "due_date": due.isoformat(), "url": None},
        )
        if order.approved is not None:
            track(
                canonical.BOLETO_PAID,
                f"boleto-paid:{seq}",
                order.approved,
                {"order_id": order_id, "amount": amount},
            )
        else:
            track(
                canonical.BOLETO_EXPIRED,
                f"boleto-expired:{seq}",
                _end_of(due),
                {"order_id": order_id, "amount": amount},
            )
    if order.status in CANCELLED_STATUSES:
        track(
            canonical.ORDER_CANCELLED,
            "cancelled",
            order.approved or order.purchased + timedelta(seconds=1),
            {"order_id": order_id, "total": total, "reason": order.status},
        )
    if order.shipped is not None:
        track(canonical.ORDER_SHIPPED, "shipped", order.shipped, {"order_id": order_id})
    if order.delivered is not None:
        track(canonical.ORDER_DELIVERED, "delivered", order.delivered, {"order_id": order_id})
    for review in reviews:
        events.append(
            (
                review.at,
                {
                    "type": "track",
                    # Olist reuses a review id across orders; the pair is unique
                    "messageId": f"olist:review:{review.review_id}:{order_id}",
                    "userId": order.user_id,
                    "event": canonical.SURVEY_ANSWERED,
                    "timestamp": review.at.isoformat(),
                    "properties": {
                        "kind": "csat",
                        "score": review.score,
                        "order_id": order_id,
                        "review_id": review.review_id,
                        "title": review.title,
                        "comment": review.comment,
                    },
                },
            )
        )
    events.sort(key=lambda e: e[0].timestamp())  # stable: ties keep the order above
    return [message for _, message in events]


def _end_of(day: date) -> datetime:
    return datetime.combine(day, _END_OF_DAY, tzinfo=SAO_PAULO)
