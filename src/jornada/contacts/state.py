"""Pure: a contact's mutable state and how one event changes it (commerce facts, traits, consent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from jornada.contacts.normalize import timezone_from_phone, timezone_from_state
from jornada.events import canonical as ev
from jornada.events.record import EventRecord

CENT = Decimal("0.01")
SESSION_GAP = timedelta(minutes=30)  # a web session ends after this long without activity
# what shows a subscriber still listens: opening, clicking, replying, signing up
ENGAGEMENT = frozenset(
    {ev.MESSAGE_OPENED, ev.MESSAGE_CLICKED, ev.MESSAGE_REPLIED, ev.SIGNED_UP, ev.FORM_SUBMITTED}
)


def to_cents(value: Any) -> int | None:
    """Exact integer cents of a money value (``"1.234,56"`` is not money here: use ``1234.56``)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return int(amount * 100)


def cents_str(cents: int) -> str:
    """``12345`` → ``"123.45"``: money leaves Jornada as a decimal string, never a float."""
    return str((Decimal(cents) / 100).quantize(CENT))


@dataclass(slots=True)
class OrderChange:
    """What an order event does to the ``orders`` table."""

    order_id: str
    status: str  # completed | cancelled | refunded
    total_cents: int
    currency: str
    placed_at: datetime


@dataclass(slots=True)
class ContactState:
    """The columns of a contact that events change, held in memory during a batch.

    Containers (traits, consent, carts, boletos…) are replaced, never mutated in
    place, so the values loaded from the database stay a valid "before" image
    to diff against when writing back only what changed.
    """

    id: str
    workspace_id: str
    user_id: str | None
    email: str | None
    phone: str | None
    traits: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    locale: str | None
    timezone: str
    timezone_source: str
    tags: list[str]
    stage: str
    owner: str | None
    score: int
    consent: dict[str, Any]
    merged_into_id: str | None
    currency: str
    orders_count: int
    total_spent_cents: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_product_viewed: dict[str, Any] | None
    open_cart: dict[str, Any] | None
    open_boletos: list[dict[str, Any]]
    web_session: dict[str, Any] | None
    last_engaged_at: datetime | None
    flow_entries: dict[str, str] | None
    created_at: datetime
    updated_at: datetime
    is_new: bool = False
    dirty: bool = False
    orders_changed: bool = False
    consent_changes: list[tuple[str, bool, datetime, str]] = field(default_factory=list)

    @classmethod
    def new(
        cls,
        contact_id: str,
        workspace_id: str,
        *,
        at: datetime,
        now: datetime,
        timezone: str,
        currency: str,
    ) -> ContactState:
        return cls(
            id=contact_id,
            workspace_id=workspace_id,
            user_id=None,
            email=None,
            phone=None,
            traits={},
            first_seen_at=at,
            last_seen_at=at,
            locale=None,
            timezone=timezone,
            timezone_source="workspace",
            tags=[],
            stage=ev.LIFECYCLE_STAGES[0],
            owner=None,
            score=0,
            consent={},
            merged_into_id=None,
            currency=currency,
            orders_count=0,
            total_spent_cents=0,
            first_order_at=None,
            last_order_at=None,
            last_product_viewed=None,
            open_cart=None,
            open_boletos=[],
            web_session=None,
            last_engaged_at=None,
            flow_entries={},
            created_at=now,
            updated_at=now,
            is_new=True,
            dirty=True,
        )


def apply_event(state: ContactState, record: EventRecord, workspace_tz: str) -> OrderChange | None:
    """Fold one event into the contact; returns the order change it implies, if any."""
    state.dirty = True
    at = record.timestamp
    state.first_seen_at = min(state.first_seen_at, at)
    state.last_seen_at = max(state.last_seen_at, at)
    if record.user_id and not state.user_id:
        state.user_id = record.user_id
    if record.email:
        state.email = record.email
    if record.phone:
        state.phone = record.phone
    if record.locale:
        state.locale = record.locale
    if record.traits:
        state.traits = {
            **state.traits,
            **{k: v for k, v in record.traits.items() if k != "consent"},
        }
        if isinstance(locale := record.traits.get("locale"), str) and locale:
            state.locale = locale[:35]
    if record.consent:
        _apply_consent(state, record.consent, at, source=_consent_source(record))
    if record.timezone or record.traits or record.phone:
        _resolve_timezone(state, workspace_tz)
    if record.type in ("track", "page", "screen"):
        name = record.event if record.type == "track" and record.event else record.type
        _touch_session(state, name, at)
    engaged = (record.type == "track" and record.event in ENGAGEMENT) or bool(
        record.consent and record.consent.get("email_marketing") is True
    )
    if engaged and (state.last_engaged_at is None or state.last_engaged_at < at):
        state.last_engaged_at = at
    if record.type == "track" and record.event is not None:
        return _apply_commerce(state, record.event, record.properties, at)
    return None


def _touch_session(state: ContactState, name: str, at: datetime) -> None:
    """The current web session: activity no more than 30 minutes apart, with counts per event.

    ``{"started_at", "last_at", "counts": {"Product Viewed": 4, "page": 2}}``; an
    event older than the session (a late arrival) belongs to a past one and is not counted.
    """
    session = state.web_session
    if session is not None:
        started = datetime.fromisoformat(session["started_at"])
        last = datetime.fromisoformat(session["last_at"])
        if at < started - SESSION_GAP:
            return
        if at - last <= SESSION_GAP:
            counts = dict(session["counts"])
            counts[name] = counts.get(name, 0) + 1
            state.web_session = {
                "started_at": min(started, at).isoformat(),
                "last_at": max(last, at).isoformat(),
                "counts": counts,
            }
            return
    state.web_session = {
        "started_at": at.isoformat(),
        "last_at": at.isoformat(),
        "counts": {name: 1},
    }


def _consent_source(record: EventRecord) -> str:
    context = record.context or {}
    source = context.get("consent_source") or context.get("source")
    return str(source)[:64] if source else f"{record.type}:{record.message_id}"[:64]


def _apply_consent(
    state: ContactState, consent: dict[str, bool], at: datetime, *, source: str
) -> None:
    """Latest statement wins, per channel and purpose; every statement is kept as history."""
    for key, granted in consent.items():
        current = state.consent.get(key)
        if current is not None and current["at"] > at.isoformat():
            continue
        state.consent = {
            **state.consent,
            key: {"granted": granted, "source": source, "at": at.isoformat()},
        }
        state.consent_changes.append((key, granted, at, source))


def _resolve_timezone(state: ContactState, workspace_tz: str) -> None:
    """Trait, else the phone's area, else the Brazilian state, else the workspace's zone."""
    traits = state.traits
    tz = traits.get("timezone")
    if isinstance(tz, str) and tz:
        state.timezone, state.timezone_source = tz, "trait"
    elif state.phone and (tz := timezone_from_phone(state.phone)):
        state.timezone, state.timezone_source = tz, "phone"
    elif tz := timezone_from_state(traits.get("state"), traits.get("country")):
        state.timezone, state.timezone_source = tz, "state"
    else:
        state.timezone, state.timezone_source = workspace_tz, "workspace"


def _apply_commerce(
    state: ContactState, name: str, props: dict[str, Any], at: datetime
) -> OrderChange | None:
    if name == ev.PRODUCT_VIEWED:
        previous = state.last_product_viewed
        if previous is None or previous.get("viewed_at", "") <= at.isoformat():
            state.last_product_viewed = {
                **_product(props),
                "category": props.get("category"),
                "viewed_at": at.isoformat(),
            }
    elif name == ev.PRODUCT_ADDED:
        _cart_add(state, props, at)
    elif name == ev.PRODUCT_REMOVED:
        _cart_remove(state, props, at)
    elif name == ev.CHECKOUT_STARTED:
        _checkout(state, props, at)
    elif name == ev.ORDER_COMPLETED:
        cart = state.open_cart
        if cart is not None and cart.get("updated_at", "") <= at.isoformat():
            state.open_cart = None
        return _order_change(state, props, at, "completed")
    elif name in (ev.ORDER_CANCELLED, ev.ORDER_REFUNDED):
        _close_boleto(state, props)
        return _order_change(
            state, props, at, "cancelled" if name == ev.ORDER_CANCELLED else "refunded"
        )
    elif name == ev.BOLETO_ISSUED:
        _close_boleto(state, props)
        boleto = {
            "order_id": str(props.get("order_id")),
            "amount": _money_str(props.get("amount")),
            "due_date": props.get("due_date"),
            "url": props.get("url"),
            "issued_at": at.isoformat(),
        }
        state.open_boletos = sorted(
            [*state.open_boletos, boleto], key=lambda b: str(b.get("due_date") or "")
        )
    elif name in (ev.BOLETO_PAID, ev.BOLETO_EXPIRED):
        _close_boleto(state, props)
    return None


def _money_str(value: Any) -> str | None:
    cents = to_cents(value)
    return None if cents is None else cents_str(cents)


def _product(props: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": str(props.get("product_id") or props.get("sku") or ""),
        "name": props.get("name"),
        "price": _money_str(props.get("price")),
        "url": props.get("url"),
        "image_url": props.get("image_url"),
    }


def _quantity(props: dict[str, Any]) -> int:
    qty = props.get("quantity", 1)
    return qty if isinstance(qty, int) and not isinstance(qty, bool) and qty > 0 else 1


def _cart_value(items: list[dict[str, Any]]) -> str:
    total = sum((to_cents(i.get("price")) or 0) * int(i.get("quantity", 1)) for i in items)
    return cents_str(total)


def _touch_cart(state: ContactState, at: datetime) -> dict[str, Any]:
    cart = state.open_cart
    if cart is None:
        cart = {"items": [], "value": "0.00", "checkout_url": None, "cart_id": None}
    cart = dict(cart)
    cart["updated_at"] = max(cart.get("updated_at", ""), at.isoformat())
    return cart


def _cart_add(state: ContactState, props: dict[str, Any], at: datetime) -> None:
    cart = _touch_cart(state, at)
    product = _product(props)
    items = [dict(i) for i in cart["items"]]
    for item in items:
        if item["product_id"] == product["product_id"]:
            item["quantity"] = int(item.get("quantity", 1)) + _quantity(props)
            break
    else:
        items.append({**product, "quantity": _quantity(props)})
    cart["items"] = items
    cart["cart_id"] = props.get("cart_id", cart.get("cart_id"))
    cart["value"] = _cart_value(items)
    state.open_cart = cart


def _cart_remove(state: ContactState, props: dict[str, Any], at: datetime) -> None:
    if state.open_cart is None:
        return
    cart = _touch_cart(state, at)
    product_id = str(props.get("product_id") or props.get("sku") or "")
    items = []
    for item in cart["items"]:
        if item["product_id"] == product_id:
            item = {**item, "quantity": int(item.get("quantity", 1)) - _quantity(props)}
            if item["quantity"] <= 0:
                continue
        items.append(item)
    cart["items"] = items
    cart["value"] = _cart_value(items)
    state.open_cart = cart if items else None


def _checkout(state: ContactState, props: dict[str, Any], at: datetime) -> None:
    cart = _touch_cart(state, at)
    products = props.get("products")
    if isinstance(products, list) and products:
        cart["items"] = [
            {**_product(p), "quantity": _quantity(p)} for p in products if isinstance(p, dict)
        ]
    cart["checkout_url"] = props.get("checkout_url", cart.get("checkout_url"))
    cart["cart_id"] = props.get("cart_id", cart.get("cart_id"))
    value = next(
        (v for k in ("value", "revenue", "total") if (v := _money_str(props.get(k))) is not None),
        None,
    )
    cart["value"] = value if value is not None else _cart_value(cart["items"])
    state.open_cart = cart


def _close_boleto(state: ContactState, props: dict[str, Any]) -> None:
    order_id = str(props.get("order_id"))
    state.open_boletos = [b for b in state.open_boletos if b["order_id"] != order_id]


def order_total_cents(props: dict[str, Any]) -> int:
    """``total``, else ``revenue``, else the sum of the products' price times quantity."""
    for key in ("total", "revenue"):
        if (cents := to_cents(props.get(key))) is not None:
            return cents
    products = props.get("products")
    if isinstance(products, list):
        return sum(
            (to_cents(p.get("price")) or 0) * _quantity(p) for p in products if isinstance(p, dict)
        )
    return 0


def _order_change(
    state: ContactState, props: dict[str, Any], at: datetime, status: str
) -> OrderChange | None:
    order_id = props.get("order_id")
    if order_id is None:
        return None
    state.orders_changed = True
    currency = str(props.get("currency") or state.currency).upper()
    return OrderChange(str(order_id), status, order_total_cents(props), currency, at)


def merge_states(survivor: ContactState, loser: ContactState) -> None:
    """Fold ``loser`` into ``survivor``: the survivor's own values win, the loser's fill the gaps."""
    survivor.dirty = loser.dirty = True
    survivor.first_seen_at = min(survivor.first_seen_at, loser.first_seen_at)
    survivor.last_seen_at = max(survivor.last_seen_at, loser.last_seen_at)
    survivor.user_id = survivor.user_id or loser.user_id
    survivor.email = survivor.email or loser.email
    survivor.phone = survivor.phone or loser.phone
    survivor.locale = survivor.locale or loser.locale
    survivor.owner = survivor.owner or loser.owner
    survivor.traits = {**loser.traits, **survivor.traits}
    survivor.tags = sorted(set(survivor.tags) | set(loser.tags))
    consent = dict(survivor.consent)
    for key, value in loser.consent.items():
        mine = consent.get(key)
        if mine is None or mine["at"] < value["at"]:
            consent[key] = value
    survivor.consent = consent
    if survivor.timezone_source == "workspace":
        survivor.timezone, survivor.timezone_source = loser.timezone, loser.timezone_source
    views = [v for v in (survivor.last_product_viewed, loser.last_product_viewed) if v]
    survivor.last_product_viewed = max(views, key=lambda v: v.get("viewed_at", ""), default=None)
    carts = [c for c in (survivor.open_cart, loser.open_cart) if c]
    survivor.open_cart = max(carts, key=lambda c: c.get("updated_at", ""), default=None)
    mine_ids = {b["order_id"] for b in survivor.open_boletos}
    survivor.open_boletos = survivor.open_boletos + [
        b for b in loser.open_boletos if b["order_id"] not in mine_ids
    ]
    if survivor.flow_entries is not None and loser.flow_entries is not None:
        entries = dict(loser.flow_entries)
        for key, at in survivor.flow_entries.items():
            entries[key] = max(at, entries.get(key, ""))
        survivor.flow_entries = entries  # a merged person does not re-enter a flow too soon
    else:
        survivor.flow_entries = None  # unknown: the runner reads it from the runs again
    engaged = [e for e in (survivor.last_engaged_at, loser.last_engaged_at) if e]
    survivor.last_engaged_at = max(engaged, default=None)
    sessions = [w for w in (survivor.web_session, loser.web_session) if w]
    survivor.web_session = max(sessions, key=lambda w: w["last_at"], default=None)
    survivor.orders_changed = True
    survivor.consent_changes += loser.consent_changes
    loser.consent_changes = []
    loser.merged_into_id = survivor.id
