"""A workspace's own segments: saved and versioned through the API and the CLI, then served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from jornada.db import Database
from jornada.ingest import accept_messages
from tests.conftest import Shop, make_shop
from tests.support.server import LiveServer
from tests.test_cli import jornada


def _orders(db: Database, shop: Shop, now: datetime) -> None:
    """ana and bia bought 45 days ago (bia is B2B); caio 5 days ago; dani viewed 3 times."""
    messages: list[dict[str, Any]] = [
        {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": (now - timedelta(days=days)).isoformat(),
            "properties": {"order_id": f"o-{user}", "total": "99.90"},
        }
        for user, days in (("ana", 45), ("bia", 45), ("caio", 5))
    ]
    messages.append({"type": "identify", "userId": "bia", "traits": {"lead_type": "b2b"}})
    messages += [
        {
            "type": "track",
            "userId": "dani",
            "event": "Product Viewed",
            "timestamp": (now - timedelta(hours=h)).isoformat(),
            "properties": {"product_id": "p1"},
        }
        for h in (1, 2, 3)
    ]
    accept_messages(db, shop.ref, messages, received_at=now, trigger_flows=False)


def _users(response: httpx.Response) -> list[str]:
    return sorted(c["user_id"] for c in response.json()["data"])


def test_custom_segments_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """Save, version, refer, list, serve members, delete; built-ins and mistakes are refused."""
    # given
    server, shop, db = server_shop
    _orders(db, shop, datetime.now(UTC))
    api = f"{server.url}/api/v1/segments"
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    inactive_b2c = {
        "name": "Inactive, not B2B",
        "where": {
            "all": [{"segment": "inactive-30d"}, {"not": {"trait": "lead_type", "eq": "b2b"}}]
        },
    }
    # when
    first = httpx.put(
        f"{api}/inactive-b2c", json={**inactive_b2c, "name": "draft"}, headers=headers
    )
    second = httpx.put(f"{api}/inactive-b2c", json=inactive_b2c, headers=headers)
    hesitant = httpx.put(
        f"{api}/hesitant",
        json={
            "name": "Viewed 3 times today, no order",
            "where": {
                "all": [
                    {"event": "Product Viewed", "within": "24h", "count": {"gte": 3}},
                    {"not": {"event": "Order Completed", "within": "7d"}},
                ]
            },
        },
        headers=headers,
    )
    both = httpx.put(
        f"{api}/to-call",
        json={
            "name": "To call",
            "where": {"any": [{"segment": "inactive-b2c"}, {"segment": "hesitant"}]},
        },
        headers=headers,
    )
    # then
    assert (first.status_code, first.json()["version"]) == (201, 1)
    assert (second.status_code, second.json()["version"]) == (200, 2)
    assert hesitant.status_code == both.status_code == 201
    detail = httpx.get(f"{api}/inactive-b2c", headers=headers).json()
    assert (detail["name"], detail["version"], detail["builtin"], detail["size"]) == (
        "Inactive, not B2B",
        2,
        False,
        1,
    )
    assert _users(httpx.get(f"{api}/inactive-b2c/members", headers=headers)) == ["ana"]
    assert _users(httpx.get(f"{api}/hesitant/members", headers=headers)) == ["dani"]
    assert _users(httpx.get(f"{api}/to-call/members", headers=headers)) == ["ana", "dani"]
    versions = httpx.get(f"{api}/inactive-b2c/versions", headers=headers).json()["data"]
    assert [(v["version"], v["name"]) for v in versions] == [(2, "Inactive, not B2B"), (1, "draft")]
    listing = {s["key"]: s for s in httpx.get(api, headers=headers).json()["data"]}
    assert listing["to-call"]["size"] == 2
    assert listing["inactive-30d"]["builtin"] is True
    export = httpx.get(f"{api}/to-call/export", headers=headers)
    assert export.status_code == 200
    assert export.text.count("\n") == 3  # header and two members


def test_custom_segment_mistakes_are_refused(
    server_shop: tuple[LiveServer, Shop, Database],
) -> None:
    """Each refusal says which field and why, and saves nothing."""
    # given
    server, shop, _ = server_shop
    api = f"{server.url}/api/v1/segments"
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    httpx.put(f"{api}/a", json={"name": "A", "where": {"tag": "vip"}}, headers=headers)
    # when
    builtin = httpx.put(
        f"{api}/inactive-30d", json={"name": "x", "where": {"tag": "x"}}, headers=headers
    )
    bad_path = httpx.put(
        f"{api}/b", json={"name": "B", "where": {"all": [{"fact": "orders"}]}}, headers=headers
    )
    unknown = httpx.put(
        f"{api}/b", json={"name": "B", "where": {"segment": "nope"}}, headers=headers
    )
    loop = httpx.put(
        f"{api}/a", json={"name": "A", "where": {"any": [{"segment": "a"}]}}, headers=headers
    )
    other_key = httpx.put(
        f"{api}/b", json={"key": "c", "name": "B", "where": {"tag": "x"}}, headers=headers
    )
    delete_builtin = httpx.delete(f"{api}/b2b", headers=headers)
    # then
    assert builtin.status_code == 409
    assert builtin.json()["field"] == "key"
    assert bad_path.status_code == 400
    assert bad_path.json()["field"] == "where.all[0].fact"
    assert unknown.status_code == 400
    assert "no segment with key 'nope'" in unknown.json()["message"]
    assert loop.status_code == 400
    assert "a -> a" in loop.json()["message"]
    assert other_key.status_code == 400
    assert other_key.json()["field"] == "key"
    assert delete_builtin.status_code == 409
    assert httpx.get(f"{api}/b", headers=headers).status_code == 404
    versions = httpx.get(f"{api}/a/versions", headers=headers).json()["data"]
    assert [v["version"] for v in versions] == [1]


def test_custom_segments_stay_in_their_workspace(
    server_shop: tuple[LiveServer, Shop, Database],
) -> None:
    """Another workspace neither sees, nor serves, nor deletes them; a deleted key is a 404."""
    # given
    server, shop, db = server_shop
    neighbour = make_shop(db)
    api = f"{server.url}/api/v1/segments"
    mine = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    theirs = {"Authorization": f"Bearer {neighbour.keys.secret_key}"}
    httpx.put(f"{api}/vips", json={"name": "VIPs", "where": {"tag": "vip"}}, headers=mine)
    # when / then
    assert httpx.get(f"{api}/vips", headers=theirs).status_code == 404
    assert httpx.get(f"{api}/vips/members", headers=theirs).status_code == 404
    assert httpx.delete(f"{api}/vips", headers=theirs).status_code == 404
    assert "vips" not in {s["key"] for s in httpx.get(api, headers=theirs).json()["data"]}
    assert httpx.delete(f"{api}/vips", headers=mine).status_code == 204
    assert httpx.get(f"{api}/vips", headers=mine).status_code == 404
    again = httpx.put(f"{api}/vips", json={"name": "VIPs", "where": {"tag": "vip"}}, headers=mine)
    assert (again.status_code, again.json()["version"]) == (200, 2)


def test_segments_apply_from_files(database_url: str, database: Database, tmp_path: Path) -> None:
    """`jornada segments apply` saves every definition of the files, or none when one is wrong."""
    # given
    shop = make_shop(database, "loja")
    _orders(database, shop, datetime.now(UTC))
    good = tmp_path / "segments.yaml"
    good.write_text(
        "- key: inactive-b2c\n  name: Inactive, not B2B\n  where:\n"
        "    all: [{segment: inactive-30d}, {not: {trait: lead_type, eq: b2b}}]\n"
        "- key: vips\n  name: VIPs\n  where: {tag: vip}\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("key: broken\nname: Broken\nwhere: {segment: nope}\n", encoding="utf-8")
    # when
    applied = jornada(database_url, "segments", "apply", str(good), "--workspace", "loja")
    refused = jornada(database_url, "segments", "apply", str(good), str(bad), "--workspace", "loja")
    listed = jornada(database_url, "segments", "list", "--workspace", "loja")
    # then
    assert applied.returncode == 0, applied.stderr
    assert "segment inactive-b2c saved as version 1" in applied.stderr
    assert refused.returncode == 1
    assert "bad.yaml: where: no segment with key 'nope'" in refused.stderr
    rows = {line.split("│")[1].strip(): line for line in listed.stderr.splitlines() if "│" in line}
    assert "broken" not in rows
    assert rows["inactive-b2c"].split("│")[3].strip() == "1"  # the size: ana
    assert rows["inactive-b2c"].split("│")[4].strip() == "1"  # the version: nothing re-saved
