"""RFM and the built-ins on the real Olist sample, against an independent pandas computation.

SQLite only, to keep it fast: the import runs once for the module through the CLI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.audience import SegmentDefinition, builtin_segments, rfm_table, segment_members
from jornada.contacts import Contact
from jornada.db import Database
from tests.audience.shop_data import GRID
from tests.test_cli import jornada

NOW = datetime(2018, 9, 1, 12, 0, tzinfo=UTC)  # the sample's orders run to 2018-10-17
NOT_COUNTED = {"canceled", "unavailable"}


@pytest.fixture(scope="module")
def olist_db(
    olist_sample: Path, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("olist-rfm") / "olist.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    assert jornada(url, "workspace", "create", "olist").returncode == 0
    imported = jornada(url, "import", "olist", str(olist_sample), "--workspace", "olist")
    assert imported.returncode == 0, imported.stderr
    database = Database(url)
    yield database
    database.dispose()


def expected_customers(sample: Path) -> pd.DataFrame:
    """Per customer_unique_id: orders that count, spend in cents, first and last order (UTC)."""
    customers = pd.read_csv(sample / "olist_customers_dataset.csv")
    orders = pd.read_csv(sample / "olist_orders_dataset.csv")
    payments = pd.read_csv(sample / "olist_order_payments_dataset.csv")
    paid = payments.groupby("order_id")["payment_value"].sum().round(2)
    orders = orders[~orders["order_status"].isin(NOT_COUNTED)].merge(customers, on="customer_id")
    orders["cents"] = (orders["order_id"].map(paid).fillna(0) * 100).round().astype("int64")
    orders["at"] = (
        pd.to_datetime(orders["order_purchase_timestamp"])
        .dt.tz_localize("America/Sao_Paulo")
        .dt.tz_convert("UTC")
    )
    return orders.groupby("customer_unique_id").agg(
        orders_count=("order_id", "count"),
        spent=("cents", "sum"),
        first=("at", "min"),
        last=("at", "max"),
    )


def expected_rfm(people: pd.DataFrame) -> pd.DataFrame:
    """1 + floor(5 * below / n), below = rank(method="min") - 1; FM = (F + M) // 2."""
    n = len(people)
    out = pd.DataFrame(index=people.index)
    for name, column in (("r", "last"), ("f", "orders_count"), ("m", "spent")):
        below = people[column].rank(method="min").astype("int64") - 1
        out[name] = 1 + (5 * below) // n
    fm = (out["f"] + out["m"]) // 2
    out["cell"] = [GRID[r][x - 1] for r, x in zip(out["r"], fm, strict=True)]
    return out


def _all_members(session: Session, workspace: str, definition: SegmentDefinition) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        rows, cursor = segment_members(
            session, workspace, definition, NOW, limit=500, cursor=cursor
        )
        ids |= {c.id for c in rows}
        if cursor is None:
            return ids


def test_olist_rfm_matches_pandas(olist_db: Database, olist_sample: Path) -> None:
    """Every customer's R, F, M and cell, and each rfm-* segment's members, as pandas says."""
    people = expected_customers(olist_sample)
    expected = expected_rfm(people)
    with olist_db.read() as session:
        workspace = session.scalar(select(Contact.workspace_id).limit(1))
        assert workspace is not None
        users = {
            row.id: row.user_id for row in session.execute(select(Contact.id, Contact.user_id))
        }
        table = rfm_table(session, workspace, NOW)
        cells = {
            d.key: {users[i] for i in _all_members(session, workspace, d)}
            for d in builtin_segments(session, workspace)
            if d.key.startswith("rfm-")
        }
    got = pd.DataFrame(
        [(users[row.contact_id], row.rfm.r, row.rfm.f, row.rfm.m, row.rfm.cell) for row in table],
        columns=["user", "r", "f", "m", "cell"],
    ).set_index("user")
    assert len(got) == len(expected) == 6808
    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), check_names=False)
    assert set(expected["f"]) == {1, 5}  # ~97% buy once: ties share quintile 1
    for key, members in cells.items():
        wanted = set(expected.index[expected["cell"] == key.removeprefix("rfm-")])
        assert members == wanted, key


def test_olist_builtins_match_pandas(olist_db: Database, olist_sample: Path) -> None:
    """The commerce built-ins at NOW as pandas computes them; the rest are empty on Olist."""
    people = expected_customers(olist_sample)
    days_since_last = (NOW - people["last"]).dt.total_seconds() / 86400
    days_since_first = (NOW - people["first"]).dt.total_seconds() / 86400
    rank = -(-len(people) * 80 // 100) - 1  # nearest rank, 0-based
    threshold = people["spent"].sort_values().to_list()[rank]
    by_order = sorted(
        zip(people["spent"], people["orders_count"], strict=True), key=lambda p: p[0] / p[1]
    )
    spent_at, orders_at = by_order[rank]
    order_threshold = -(-spent_at // orders_at)  # the percentile's order value, cents rounded up
    expected = {
        "new-customers": people.index[(people["orders_count"] == 1) & (days_since_first <= 30)],
        "recurring-customers": people.index[people["orders_count"] >= 2],
        "inactive-30d": people.index[days_since_last > 30],
        "inactive-60d": people.index[days_since_last > 60],
        "inactive-90d": people.index[days_since_last > 90],
        "high-ticket": people.index[
            (people["spent"] > threshold)
            | (people["spent"] > people["orders_count"] * order_threshold)
        ],
    }
    with olist_db.read() as session:
        workspace = session.scalar(select(Contact.workspace_id).limit(1))
        assert workspace is not None
        users = {
            row.id: row.user_id for row in session.execute(select(Contact.id, Contact.user_id))
        }
        for definition in builtin_segments(session, workspace):
            if definition.key.startswith("rfm-"):
                continue
            members = {users[i] for i in _all_members(session, workspace, definition)}
            # no e-mail consent, carts or company ids in Olist: never-bought, cart-abandoners
            # and b2b are empty
            assert members == set(expected.get(definition.key, [])), definition.key
