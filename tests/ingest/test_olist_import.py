"""`jornada import olist` on the real Olist sample: counts, a repeat buyer, idempotence."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from jornada.contacts import Contact
from jornada.db import Database
from jornada.events import Event
from tests.test_cli import jornada

NOT_COUNTED = {"canceled", "unavailable"}


def expected_people(sample: Path) -> dict[str, tuple[int, Decimal]]:
    """Orders that count and their spend per customer_unique_id, computed straight from the CSVs."""
    with (sample / "olist_customers_dataset.csv").open(encoding="utf-8") as f:
        person = {r["customer_id"]: r["customer_unique_id"] for r in csv.DictReader(f)}
    paid: dict[str, Decimal] = defaultdict(Decimal)
    with (sample / "olist_order_payments_dataset.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            paid[row["order_id"]] += Decimal(row["payment_value"])
    result: dict[str, tuple[int, Decimal]] = {}
    with (sample / "olist_orders_dataset.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            who = person[row["customer_id"]]
            count, spent = result.get(who, (0, Decimal(0)))
            if row["order_status"] not in NOT_COUNTED:
                count, spent = count + 1, spent + paid[row["order_id"]].quantize(Decimal("0.01"))
            result[who] = (count, spent)
    return result


def test_olist_sample_imports_people_orders_and_facts(
    olist_sample: Path, database: Database, database_url: str
) -> None:
    """8,016 people, 8,135 orders; a repeat buyer's orders and spend match the CSVs; a rerun adds nothing."""
    sample = olist_sample
    # given
    assert jornada(database_url, "workspace", "create", "olist").returncode == 0
    # when
    first = jornada(database_url, "import", "olist", str(sample), "--workspace", "olist")
    # then
    assert first.returncode == 0, first.stderr
    assert "0 rows with problems" in first.stderr
    people = expected_people(sample)
    with database.read() as session:
        contacts = session.scalar(select(func.count()).select_from(Contact))
        completed = session.scalar(
            select(func.count()).select_from(Event).where(Event.event == "Order Completed")
        )
        surveys = session.scalar(
            select(func.count()).select_from(Event).where(Event.event == "Survey Answered")
        )
        total_events = session.scalar(select(func.count()).select_from(Event))
        repeat_id, (orders, spent) = max(people.items(), key=lambda kv: (kv[1][0], kv[0]))
        repeat = session.scalar(select(Contact).where(Contact.user_id == repeat_id))
        all_spent = session.scalar(select(func.sum(Contact.total_spent_cents)))
    assert contacts == len(people) == 8016
    assert completed == 8135
    assert surveys == 8225
    assert orders >= 2
    assert repeat is not None
    assert repeat.orders_count == orders
    assert Decimal(repeat.total_spent_cents) / 100 == spent
    assert repeat.traits["state"]
    assert Decimal(all_spent or 0) / 100 == sum(s for _, s in people.values())

    # when: the same import again
    again = jornada(database_url, "import", "olist", str(sample), "--workspace", "olist")
    # then: nothing new
    assert again.returncode == 0, again.stderr
    assert "imported 0 events" in again.stderr
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == total_events
        assert session.scalar(select(func.sum(Contact.total_spent_cents))) == all_spent
