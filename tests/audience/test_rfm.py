"""RFM quintiles and cells: the tie rule, a hand-made shop, and the API's contact detail."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.audience import CELLS, rfm_for_contact, rfm_table
from jornada.audience.quintiles import grouped_lower_bounds
from jornada.audience.rfm import cell_of, fm_score, lower_bounds, quintile
from jornada.contacts import Contact
from jornada.db import Database
from tests.audience.shop_data import EXPECTED_RFM, GRID, populate
from tests.conftest import NOW, Shop, make_shop
from tests.support.server import LiveServer


def _by_formula(values: list[int]) -> list[int]:
    """1 + floor(5 * below / n), below = values strictly smaller: the documented rule."""
    n = len(values)
    return [1 + 5 * sum(1 for w in values if w < v) // n for v in values]


class TestQuintiles:
    def test_ties_share_the_lower_quintile(self) -> None:
        """Seven 1s of ten are all quintile 1; the values above jump to where their rank puts them."""
        values = [1, 1, 1, 1, 1, 1, 1, 2, 2, 9]
        bounds = lower_bounds(values)
        assert bounds == (2, 2, 2, 9)
        assert [quintile(v, bounds) for v in values] == [1] * 7 + [4, 4, 5]
        assert [quintile(v, bounds) for v in values] == _by_formula(values)

    @pytest.mark.parametrize(
        "values",
        [[5], [3, 3], [1, 2, 3, 4, 5], list(range(100)), [1, 2, 2, 2, 3, 7, 7, 8, 8, 8, 8, 9]],
    )
    def test_bounds_agree_with_the_formula(self, values: list[int]) -> None:
        bounds = lower_bounds(sorted(values))
        assert [quintile(v, bounds) for v in values] == _by_formula(values)

    def test_distinct_values_fill_every_quintile_evenly(self) -> None:
        values = list(range(100))
        counts = [[quintile(v, lower_bounds(values)) for v in values].count(q) for q in range(1, 6)]
        assert counts == [20] * 5

    @given(st.lists(st.integers(min_value=0, max_value=12), max_size=60))
    def test_bounds_of_grouped_counts_are_the_bounds_of_the_values(self, values: list[int]) -> None:
        """What a full recomputation gets from ``GROUP BY orders_count``."""
        groups = sorted(Counter(values).items())
        assert grouped_lower_bounds(groups) == lower_bounds(sorted(values))

    def test_every_r_fm_pair_has_the_documented_cell(self) -> None:
        for r, row in GRID.items():
            for fm, expected in enumerate(row, 1):
                assert cell_of(r, fm).key == expected, (r, fm)
        assert {c.key for c in CELLS} == {k for row in GRID.values() for k in row}
        assert fm_score(5, 2) == 3
        assert fm_score(1, 1) == 1


def test_rfm_of_a_hand_made_shop(database: Database, shop: Shop) -> None:
    """Exact quintiles and cells; non-customers have none; a neighbour changes nothing."""
    # given: the same people twice in another workspace, with one more big spender
    populate(database, shop)
    other = make_shop(database)
    populate(database, other)
    # when
    with database.read() as session:
        table = rfm_table(session, shop.ref.id, NOW)
        by_user = {c.id: c.user_id for c in session.scalars(select(Contact))}
        ids = {
            c.user_id: c.id
            for c in session.scalars(select(Contact))
            if c.workspace_id == shop.ref.id
        }
        single = {user: rfm_for_contact(session, shop.ref.id, ids[user], NOW) for user in ids}
        foreign = rfm_for_contact(session, other.ref.id, ids["vip"], NOW)
    # then
    got = {
        by_user[row.contact_id]: (row.rfm.r, row.rfm.f, row.rfm.m, row.rfm.cell) for row in table
    }
    assert got == EXPECTED_RFM
    assert [row.contact_id for row in table] == sorted(row.contact_id for row in table)
    assert {row.recency_days for row in table if by_user[row.contact_id] == "sumida"} == {100}
    for user, rfm in single.items():
        if user in EXPECTED_RFM:
            assert rfm is not None
            assert (rfm.r, rfm.f, rfm.m, rfm.cell) == EXPECTED_RFM[user]
        else:
            assert rfm is None, user  # no order (cancelado's was cancelled)
    assert foreign is None  # another workspace's id is not this workspace's contact


def test_contact_detail_has_rfm_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """`GET /api/v1/contacts/{id}` carries rfm {r, f, m, cell}, null without orders."""
    server, shop, db = server_shop
    populate(db, shop, now=datetime.now(UTC))
    with db.read() as session:
        ids = {
            c.user_id: c.id
            for c in session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id))
        }
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    api = f"{server.url}/api/v1/contacts"
    fiel = httpx.get(f"{api}/{ids['fiel']}", headers=headers)
    lead = httpx.get(f"{api}/{ids['lead']}", headers=headers)
    assert fiel.status_code == lead.status_code == 200
    assert fiel.json()["rfm"] == {"r": 4, "f": 5, "m": 2, "cell": "potential-loyalists"}
    assert lead.json()["rfm"] is None
    members = httpx.get(f"{server.url}/api/v1/segments/rfm-lost/members", headers=headers)
    assert members.status_code == 200
    assert [m["user_id"] for m in members.json()["data"]] == ["sumida"]
