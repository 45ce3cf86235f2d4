"""The demo store: a deterministic synthetic Brazilian shop, as Segment messages."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import phonenumbers
import pytest
from email_validator import validate_email

from jornada.demo import demo_messages

NOW = datetime(2026, 10, 2, 15, 0, tzinfo=UTC)
CONTACTS = 2000
BASE_URL = "https://loja-demo.jornada.dev/"
MONEY = re.compile(r"^\d+\.\d{2}$")


@pytest.fixture(scope="module")
def messages() -> list[dict[str, Any]]:
    return list(demo_messages(NOW, seed=42, contacts=CONTACTS))


def _when(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


def _tracks(messages: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "track" and m["event"] == event]


def _cnpj_is_valid(cnpj: str) -> bool:
    """Check digits the textbook way: weights 2..9 cycling from the right, 11 minus the rest."""
    digits = [int(c) for c in re.sub(r"\D", "", cnpj)]
    if len(digits) != 14:
        return False
    for n in (12, 13):
        weights = [2 + i % 8 for i in range(n)][::-1]
        check = 11 - sum(d * w for d, w in zip(digits[:n], weights, strict=True)) % 11
        if (0 if check >= 10 else check) != digits[n]:
            return False
    return True


def test_same_inputs_give_the_same_messages_and_another_seed_differs() -> None:
    """Two runs with the same now, seed and contacts are equal; another seed differs."""
    # when
    first = list(demo_messages(NOW, seed=7, contacts=120))
    second = list(demo_messages(NOW, seed=7, contacts=120))
    other = list(demo_messages(NOW, seed=8, contacts=120))
    # then
    assert first == second
    assert len(first) > 120 * 5
    assert other != first


def test_messages_are_sorted_by_timestamp_and_none_is_after_now(
    messages: list[dict[str, Any]],
) -> None:
    """Timestamps carry an offset, never go backwards, never pass now, span ~180 days."""
    # when
    times = [_when(m) for m in messages]
    # then
    assert all(t.tzinfo is not None for t in times)
    assert times == sorted(times)
    assert times[-1] <= NOW
    assert times[0] >= NOW - timedelta(days=180)
    assert times[0] < NOW - timedelta(days=170)
    assert {m["timestamp"][-6:] for m in messages if not m["timestamp"].endswith("Z")} == {
        "-03:00",
        "-04:00",
    }


def test_message_ids_are_unique_and_count_is_in_the_demo_range(
    messages: list[dict[str, Any]],
) -> None:
    """Every messageId is distinct; 2,000 contacts give between 25,000 and 50,000 messages."""
    # when
    ids = [m["messageId"] for m in messages]
    # then
    assert len(set(ids)) == len(ids)
    assert 25_000 <= len(messages) <= 50_000
    assert {m["type"] for m in messages} == {"identify", "track", "page"}


def test_phones_are_valid_brazilian_mobiles_and_emails_are_valid(
    messages: list[dict[str, Any]],
) -> None:
    """Each identify has a valid E.164 Brazilian mobile and a valid lowercase email."""
    # given
    traits = [m["traits"] for m in messages if m["type"] == "identify"]
    # then
    assert len(traits) >= CONTACTS
    for t in traits:
        number = phonenumbers.parse(t["phone"])
        assert phonenumbers.is_valid_number(number), t["phone"]
        assert phonenumbers.region_code_for_number(number) == "BR"
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        assert t["phone"] == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert validate_email(t["email"], check_deliverability=False).normalized == t["email"]
        assert t["email"].split("@")[1] in {
            "gmail.com",
            "hotmail.com",
            "outlook.com",
            "uol.com.br",
            "yahoo.com.br",
        }
        assert t["name"] == f"{t['first_name']} {t['last_name']}"
        assert set(t["consent"]) == {
            "email_marketing",
            "whatsapp_marketing",
            "sms_marketing",
            "push_marketing",
        }
    assert len({t["state"] for t in traits}) == 12


def test_b2b_buyers_have_a_company_and_a_cnpj_with_valid_check_digits(
    messages: list[dict[str, Any]],
) -> None:
    """About 8% of contacts are B2B, each with a company and a CNPJ whose check digits are right."""
    # given
    assert _cnpj_is_valid("11.222.333/0001-81")
    assert not _cnpj_is_valid("11.222.333/0001-82")
    identifies = {m["userId"]: m["traits"] for m in messages if m["type"] == "identify"}
    b2b = [t for t in identifies.values() if "company_tax_id" in t]
    # then
    assert 0.05 * CONTACTS <= len(b2b) <= 0.11 * CONTACTS
    for t in b2b:
        assert _cnpj_is_valid(t["company_tax_id"]), t["company_tax_id"]
        assert t["lead_type"] == "b2b"
        assert t["company"]
    assert all("lead_type" not in t for t in identifies.values() if "company_tax_id" not in t)


def test_boleto_paid_and_expired_refer_to_a_boleto_issued_to_the_same_contact(
    messages: list[dict[str, Any]],
) -> None:
    """Each Boleto Paid/Expired follows a Boleto Issued with the same userId, order, amount."""
    # given
    issued = {
        (m["userId"], m["properties"]["order_id"]): m for m in _tracks(messages, "Boleto Issued")
    }
    closing = _tracks(messages, "Boleto Paid") + _tracks(messages, "Boleto Expired")
    # then
    assert closing
    for m in closing:
        boleto = issued[(m["userId"], m["properties"]["order_id"])]
        assert m["properties"]["amount"] == boleto["properties"]["amount"]
        assert _when(m) > _when(boleto)
    assert len({m["properties"]["order_id"] for m in closing}) == len(closing)


def test_the_mix_has_open_and_expired_boletos_and_payment_shares_near_targets(
    messages: list[dict[str, Any]],
) -> None:
    """Some unpaid boletos are due after now, some expired after due; methods within 7 points."""
    # given
    orders = _tracks(messages, "Order Completed")
    issued = _tracks(messages, "Boleto Issued")
    paid = {m["properties"]["order_id"] for m in _tracks(messages, "Boleto Paid")}
    expired = _tracks(messages, "Boleto Expired")
    expired_ids = {m["properties"]["order_id"] for m in expired}
    due = {
        m["properties"]["order_id"]: date.fromisoformat(m["properties"]["due_date"]) for m in issued
    }
    # when
    open_future = [o for o, d in due.items() if o not in paid | expired_ids and d > NOW.date()]
    shares = Counter(m["properties"]["payment_method"] for m in orders)
    # then
    assert len(open_future) >= 2
    assert len(expired) >= 10
    assert all(_when(m).date() > due[m["properties"]["order_id"]] for m in expired)
    assert 0.2 <= (len(issued) - len(paid)) / len(issued) <= 0.5
    assert set(shares) == {"credit_card", "pix", "boleto"}
    for method, target in (("credit_card", 55), ("pix", 25), ("boleto", 20)):
        assert abs(100 * shares[method] / len(orders) - target) <= 7, (method, shares)


def test_boleto_due_date_is_three_days_after_the_purchase(
    messages: list[dict[str, Any]],
) -> None:
    """Boleto Issued's due_date is the purchase's local date plus three days."""
    # given
    purchased = {
        m["properties"]["order_id"]: _when(m).date() for m in _tracks(messages, "Order Completed")
    }
    # then
    for m in _tracks(messages, "Boleto Issued"):
        order_id = m["properties"]["order_id"]
        assert date.fromisoformat(m["properties"]["due_date"]) == purchased[order_id] + timedelta(
            days=3
        )


def test_order_events_refer_to_an_order_the_same_contact_completed(
    messages: list[dict[str, Any]],
) -> None:
    """Payment, shipping, delivery, cancellation and survey events carry a completed order_id."""
    # given
    completed = {m["properties"]["order_id"]: m for m in _tracks(messages, "Order Completed")}
    checkouts = {m["properties"]["order_id"]: m for m in _tracks(messages, "Checkout Started")}
    followers = (
        "Pix Issued",
        "Pix Paid",
        "Boleto Issued",
        "Boleto Paid",
        "Boleto Expired",
        "Order Shipped",
        "Order Delivered",
        "Order Cancelled",
        "Survey Answered",
    )
    # then
    for event in followers:
        for m in _tracks(messages, event):
            order = completed[m["properties"]["order_id"]]
            assert m["userId"] == order["userId"]
            assert _when(m) >= _when(order)
    for order_id, order in completed.items():
        checkout = checkouts[order_id]
        assert checkout["userId"] == order["userId"]
        assert checkout["properties"]["value"] == order["properties"]["total"]
    abandoned = len(set(checkouts) - set(completed)) / len(checkouts)
    assert 0.18 <= abandoned <= 0.32


def test_commerce_properties_follow_the_canonical_shapes(messages: list[dict[str, Any]]) -> None:
    """Money is a decimal string in BRL, urls are the demo store's, products carry their fields."""
    # given
    orders = _tracks(messages, "Order Completed")
    views = _tracks(messages, "Product Viewed")
    # then
    for m in views:
        p = m["properties"]
        assert MONEY.match(p["price"])
        assert 29.90 <= float(p["price"]) <= 2499.00
        assert p["currency"] == "BRL"
        assert p["url"].startswith(BASE_URL)
        assert p["image_url"].startswith(BASE_URL)
    assert 50 <= len({m["properties"]["product_id"] for m in views}) <= 70
    assert 6 <= len({m["properties"]["category"] for m in views}) <= 8
    for m in orders:
        p = m["properties"]
        assert MONEY.match(p["total"])
        assert p["currency"] == "BRL"
        assert p["payments"] == [
            {
                "type": p["payment_method"],
                "installments": p["payments"][0]["installments"],
                "value": p["total"],
            }
        ]
        assert all(
            set(i) == {"product_id", "name", "category", "price", "quantity"} for i in p["products"]
        )
    for m in _tracks(messages, "Checkout Started"):
        assert m["properties"]["checkout_url"].startswith(BASE_URL)
    for m in _tracks(messages, "Survey Answered"):
        p = m["properties"]
        assert p["score"] in (range(1, 6) if p["kind"] == "csat" else range(11))
        assert p["kind"] in {"csat", "nps"}
    for m in messages:
        if m["type"] == "page":
            assert m["properties"]["url"].startswith(BASE_URL)


def test_distinct_identified_user_ids_equal_contacts(messages: list[dict[str, Any]]) -> None:
    """Exactly `contacts` userIds are identified; some anonymousIds are linked, others never are."""
    # given
    small = list(demo_messages(NOW, seed=3, contacts=57))
    # when
    identified = {m["userId"] for m in messages if m["type"] == "identify"}
    linked = {m["anonymousId"] for m in messages if m["type"] == "identify" and "anonymousId" in m}
    anonymous_only = {m["anonymousId"] for m in messages if "userId" not in m} - linked
    # then
    assert len(identified) == CONTACTS
    assert {m["userId"] for m in messages if "userId" in m} == identified
    assert len({m["userId"] for m in small if m["type"] == "identify"}) == 57
    assert len(linked) > CONTACTS // 2
    assert len(anonymous_only) > CONTACTS // 10
    assert list(demo_messages(NOW, contacts=0)) == []


def test_repeat_buyers_and_inactive_customers_exist(messages: list[dict[str, Any]]) -> None:
    """Some buyers order 2 to 6 times, and some contacts have done nothing for 60 days or more."""
    # given
    per_buyer = Counter(m["userId"] for m in _tracks(messages, "Order Completed"))
    last_seen: dict[str, datetime] = {}
    for m in messages:
        if "userId" in m:
            last_seen[m["userId"]] = _when(m)
    # then
    repeat = [n for n in per_buyer.values() if n > 1]
    assert 0.08 * len(per_buyer) <= len(repeat) <= 0.25 * len(per_buyer)
    assert max(per_buyer.values()) <= 6
    quiet = [t for t in last_seen.values() if NOW - t >= timedelta(days=60)]
    assert len(quiet) >= 0.1 * CONTACTS


def test_now_must_be_aware() -> None:
    """A naive now is refused before anything is generated."""
    with pytest.raises(ValueError, match="aware"):
        demo_messages(datetime(2026, 10, 2, 15, 0))  # noqa: DTZ001
