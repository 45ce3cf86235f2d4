"""The segments admin API over a live `jornada serve`."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from jornada.db import Database
from tests.audience.shop_data import EXPECTED, EXPECTED_CELLS, populate
from tests.conftest import Shop, make_shop
from tests.support.server import LiveServer


def test_segments_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """List with sizes, one definition, members by page; another workspace never leaks in."""
    # given: the server runs on the system clock, so the history is relative to it
    server, shop, db = server_shop
    populate(db, shop, now=datetime.now(UTC))
    neighbour = make_shop(db)
    populate(db, neighbour, now=datetime.now(UTC))
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    api = f"{server.url}/api/v1/segments"
    # when
    listing = httpx.get(api, headers=headers)
    detail = httpx.get(f"{api}/b2b", headers=headers)
    first = httpx.get(f"{api}/inactive-30d/members", params={"limit": 3}, headers=headers)
    cursor = first.json()["next_cursor"]
    second = httpx.get(
        f"{api}/inactive-30d/members", params={"limit": 3, "cursor": cursor}, headers=headers
    )
    # then
    assert listing.status_code == 200
    sizes = {s["key"]: s["size"] for s in listing.json()["data"]}
    expected = {**EXPECTED, **EXPECTED_CELLS}
    assert sizes == {key: len(users) for key, users in expected.items()}
    assert detail.status_code == 200
    assert detail.json()["size"] == 2
    assert detail.json()["where"]["any"][1] == {"trait": "cnpj", "exists": True}
    assert first.status_code == second.status_code == 200
    members = first.json()["data"] + second.json()["data"]
    assert {m["user_id"] for m in members} == EXPECTED["inactive-30d"]
    assert second.json()["next_cursor"] is None
    own_ids = {m["id"] for m in members}
    neighbour_ids = {
        m["id"]
        for m in httpx.get(
            f"{api}/inactive-30d/members",
            headers={"Authorization": f"Bearer {neighbour.keys.secret_key}"},
        ).json()["data"]
    }
    assert own_ids.isdisjoint(neighbour_ids)
    member = members[0]
    assert set(member) >= {"id", "traits", "tags", "stage", "consent", "commerce"}
    assert member["commerce"]["total_spent"].count(".") == 1  # money as a decimal string


def test_segments_errors_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """An unknown key is a 404 naming the field; a wrong key is a 401."""
    server, shop, _ = server_shop
    api = f"{server.url}/api/v1/segments"
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    missing = httpx.get(f"{api}/nope", headers=headers)
    missing_members = httpx.get(f"{api}/nope/members", headers=headers)
    wrong = httpx.get(api, headers={"Authorization": "Bearer sk_wrong"})
    write_key = httpx.get(api, headers={"Authorization": f"Bearer {shop.keys.write_key}"})
    bad_limit = httpx.get(f"{api}/b2b/members", params={"limit": 0}, headers=headers)
    for cursor in ("%%%", "WzEsMl0"):  # not base64 JSON; a list of two numbers
        bad_cursor = httpx.get(f"{api}/b2b/members", params={"cursor": cursor}, headers=headers)
        assert bad_cursor.status_code == 400, bad_cursor.text
        assert bad_cursor.json()["field"] == "cursor"
    assert missing.status_code == missing_members.status_code == 404
    assert missing.json() == {
        "code": "not_found",
        "message": "no segment with key 'nope'",
        "field": "key",
    }
    assert wrong.status_code == write_key.status_code == 401
    assert wrong.json()["code"] == "unauthorized"
    assert bad_limit.status_code == 400
    assert bad_limit.json()["field"] == "limit"
