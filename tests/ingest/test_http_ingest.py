"""Ingestion over HTTP: every rejection says which field and why, and loses nothing valid."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from jornada.contacts import Contact
from jornada.db import Database
from jornada.events import Event
from tests.conftest import Shop, make_shop
from tests.support.server import LiveServer

ServerShop = tuple[LiveServer, Shop, Database]


def post(server: LiveServer, shop: Shop, path: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(
        f"{server.url}{path}",
        content=content,
        auth=(shop.keys.write_key, ""),
        headers={"Content-Type": "application/json"},
        **kwargs,
    )


def count_events(db: Database, shop: Shop) -> int:
    with db.read() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Event).where(Event.workspace_id == shop.ref.id)
            )
            or 0
        )


def admin(server: LiveServer, shop: Shop, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.url}{path}",
        params=params,
        headers={"Authorization": f"Bearer {shop.keys.secret_key}"},
    )


@pytest.mark.parametrize(
    ("_case", "path", "body", "field", "reason_part"),
    [
        ("no id", "/v1/track", {"event": "Signed Up"}, "userId", "userId or anonymousId"),
        ("empty event", "/v1/track", {"userId": "u", "event": ""}, "event", "at least 1"),
        ("missing event", "/v1/track", {"userId": "u"}, "event", "required"),
        ("event wrong type", "/v1/track", {"userId": "u", "event": 5}, "event", "string"),
        ("userId list", "/v1/track", {"userId": ["u"], "event": "x"}, "userId", "string"),
        (
            "properties not object",
            "/v1/track",
            {"userId": "u", "event": "x", "properties": [1]},
            "properties",
            "dictionary",
        ),
        (
            "bad timestamp",
            "/v1/track",
            {"userId": "u", "event": "x", "timestamp": "ontem"},
            "timestamp",
            "datetime",
        ),
        (
            "bad email",
            "/v1/identify",
            {"userId": "u", "traits": {"email": "ana@"}},
            "traits.email",
            "not a valid email",
        ),
        (
            "bad phone",
            "/v1/identify",
            {"userId": "u", "traits": {"phone": "123"}},
            "traits.phone",
            "phone",
        ),
        (
            "bad time zone",
            "/v1/identify",
            {"userId": "u", "traits": {"timezone": "Mars/Base"}},
            "traits.timezone",
            "IANA",
        ),
        (
            "bad consent key",
            "/v1/identify",
            {"userId": "u", "traits": {"consent": {"fax_marketing": True}}},
            "traits.consent",
            "unknown consent",
        ),
        (
            "consent not bool",
            "/v1/identify",
            {"userId": "u", "traits": {"consent": {"email_marketing": "talvez"}}},
            "traits.consent",
            "true or false",
        ),
        ("alias without userId", "/v1/alias", {"previousId": "a"}, "userId", "alias"),
        ("group without groupId", "/v1/group", {"userId": "u"}, "groupId", "required"),
        ("body is a list", "/v1/track", [1, 2], "body", "JSON object"),
    ],
)
def test_single_call_rejections(
    server_shop: ServerShop, _case: str, path: str, body: Any, field: str, reason_part: str
) -> None:
    """A bad single call gets a 400 naming the field and the reason, and stores nothing."""
    server, shop, db = server_shop
    response = post(server, shop, path, body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["field"] == field
    assert reason_part.lower() in payload["message"].lower()
    assert count_events(db, shop) == 0


def test_malformed_json_is_a_400_about_the_body(server_shop: ServerShop) -> None:
    """Broken JSON is refused with field 'body'."""
    server, shop, db = server_shop
    response = post(server, shop, "/v1/track", b'{"userId": "u", "event": ')
    assert response.status_code == 400
    assert response.json()["field"] == "body"
    assert "not valid JSON" in response.json()["message"]
    assert count_events(db, shop) == 0


@pytest.mark.parametrize(
    ("_case", "auth", "extra_headers"),
    [
        ("wrong key", ("wk_nope", ""), {}),
        ("no key", None, {}),
        ("secret key used as write key", "secret", {}),
    ],
)
def test_wrong_key_is_401_and_stores_nothing(
    server_shop: ServerShop, _case: str, auth: Any, extra_headers: dict[str, str]
) -> None:
    """Only the workspace's write key is accepted; anything else is 401 and nothing is stored."""
    server, shop, db = server_shop
    if auth == "secret":
        auth = (shop.keys.secret_key, "")
    response = httpx.post(
        f"{server.url}/v1/batch",
        auth=auth,
        headers=extra_headers,
        content=orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "x"}]}),
    )
    assert response.status_code == 401
    assert response.json()["field"] == "authorization"
    assert count_events(db, shop) == 0


def test_write_key_in_body_is_accepted(server_shop: ServerShop) -> None:
    """Segment clients that cannot set headers send `writeKey` in the body."""
    server, shop, db = server_shop
    response = httpx.post(
        f"{server.url}/v1/track",
        content=orjson.dumps({"writeKey": shop.keys.write_key, "userId": "u", "event": "x"}),
    )
    assert response.status_code == 200
    assert count_events(db, shop) == 1


def test_batch_keeps_valid_messages_and_lists_rejected_by_index(server_shop: ServerShop) -> None:
    """A batch mixing good and bad messages stores the good ones and reports the bad by index."""
    server, shop, db = server_shop
    batch = [
        {"type": "identify", "userId": "u1", "traits": {"email": "ana@loja.com"}},
        {"type": "track", "event": "x"},
        {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"price": 10}},
        {"type": "rocket", "userId": "u1"},
        {"type": "identify", "userId": "u2", "traits": {"phone": "abc"}},
        "not an object",
        {"type": "page", "anonymousId": "a9", "name": "Home"},
    ]
    response = post(server, shop, "/v1/batch", {"batch": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is False
    assert body["accepted"] == 3
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "userId"),
        (3, "type"),
        (4, "traits.phone"),
        (5, "message"),
    ]
    assert count_events(db, shop) == 3


def test_batch_with_nothing_valid_is_400(server_shop: ServerShop) -> None:
    """When no message of a batch can be kept, the batch is a 400 that still lists each reason."""
    server, shop, db = server_shop
    response = post(server, shop, "/v1/batch", {"batch": [{"type": "track", "event": "x"}]})
    assert response.status_code == 400
    assert response.json()["rejected"] == [
        {"index": 0, "field": "userId", "reason": "either userId or anonymousId is required"}
    ]
    assert count_events(db, shop) == 0


def test_batch_must_be_a_list(server_shop: ServerShop) -> None:
    server, shop, _db = server_shop
    response = post(server, shop, "/v1/batch", {"batch": {"type": "track"}})
    assert response.status_code == 400
    assert response.json()["field"] == "batch"


def test_oversized_single_message_is_413(server_shop: ServerShop) -> None:
    """A single call over 32 KB is refused with 413."""
    server, shop, db = server_shop
    body = {"userId": "u", "event": "x", "properties": {"blob": "a" * (33 * 1024)}}
    response = post(server, shop, "/v1/track", body)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert count_events(db, shop) == 0


def test_oversized_batch_is_413(server_shop: ServerShop) -> None:
    """A batch over 500 KB is refused whole with 413."""
    server, shop, db = server_shop
    batch = [
        {"type": "track", "userId": "u", "event": "x", "properties": {"blob": "a" * 20_000}}
        for _ in range(30)
    ]
    response = post(server, shop, "/v1/batch", {"batch": batch})
    assert response.status_code == 413
    assert count_events(db, shop) == 0


def test_oversized_message_inside_a_batch_is_rejected_alone(server_shop: ServerShop) -> None:
    """Inside a batch, a message over 32 KB is rejected by index and the rest is kept."""
    server, shop, db = server_shop
    batch = [
        {"type": "track", "userId": "u", "event": "big", "properties": {"blob": "a" * 40_000}},
        {"type": "track", "userId": "u", "event": "small"},
    ]
    response = post(server, shop, "/v1/batch", {"batch": batch})
    assert response.status_code == 200
    assert response.json()["rejected"][0]["index"] == 0
    assert response.json()["rejected"][0]["field"] == "message"
    assert count_events(db, shop) == 1


def test_duplicate_message_ids_are_acknowledged_and_stored_once(server_shop: ServerShop) -> None:
    """Resending a messageId (a client retry) is a 200 and does not count twice."""
    server, shop, db = server_shop
    order = {
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "messageId": "order-1",
        "properties": {"order_id": "1", "total": "150.00"},
    }
    first = post(server, shop, "/v1/batch", {"batch": [order, order]})
    again = post(server, shop, "/v1/track", order)
    assert first.json()["accepted"] == 1
    assert first.json()["duplicates"] == 1
    assert again.status_code == 200
    assert again.json() == {"success": True, "duplicate": True}
    assert count_events(db, shop) == 1
    contact = admin(server, shop, "/api/v1/contacts", user_id="u1").json()["data"][0]
    assert contact["commerce"]["orders_count"] == 1
    assert contact["commerce"]["total_spent"] == "150.00"


def test_same_message_id_in_two_workspaces_is_two_events(server_shop: ServerShop) -> None:
    """messageId deduplicates per workspace, not across shops."""
    server, shop, db = server_shop
    other = make_shop(db)
    message = {"userId": "u", "event": "x", "messageId": "shared-id"}
    assert post(server, shop, "/v1/track", message).json()["duplicate"] is False
    assert post(server, other, "/v1/track", message).json()["duplicate"] is False
    assert count_events(db, shop) == 1
    assert count_events(db, other) == 1


def test_workspaces_never_see_each_others_contacts(server_shop: ServerShop) -> None:
    """A secret key reads only its own workspace: another shop's contact is a 404."""
    server, shop, db = server_shop
    other = make_shop(db)
    post(server, other, "/v1/identify", {"userId": "segredo", "traits": {"email": "x@y.com"}})
    theirs = admin(server, other, "/api/v1/contacts", user_id="segredo").json()["data"][0]
    assert admin(server, shop, "/api/v1/contacts", user_id="segredo").json()["data"] == []
    assert admin(server, shop, f"/api/v1/contacts/{theirs['id']}").status_code == 404
    assert admin(server, shop, f"/api/v1/contacts/{theirs['id']}/events").status_code == 404


def test_admin_api_needs_the_secret_key(server_shop: ServerShop) -> None:
    """No key, a wrong key or the write key: 401 on the admin API."""
    server, shop, _db = server_shop
    url = f"{server.url}/api/v1/contacts"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer sk_wrong"}).status_code == 401
    write = {"Authorization": f"Bearer {shop.keys.write_key}"}
    assert httpx.get(url, headers=write).status_code == 401


def test_clock_skew_is_corrected_with_sent_at(server_shop: ServerShop) -> None:
    """A client whose clock is 2 h ahead: timestamp is shifted by (sentAt - receivedAt)."""
    server, shop, _db = server_shop
    # the client's clock says 2030; the event happened 10 s before it sent the batch
    body = {
        "batch": [
            {"type": "track", "userId": "skew", "event": "x", "timestamp": "2030-01-01T12:00:00Z"}
        ],
        "sentAt": "2030-01-01T12:00:10Z",
    }
    post(server, shop, "/v1/batch", body)
    contact = admin(server, shop, "/api/v1/contacts", user_id="skew").json()["data"][0]
    event = admin(server, shop, f"/api/v1/contacts/{contact['id']}/events").json()["data"][0]
    from datetime import datetime, timedelta

    gap = datetime.fromisoformat(event["received_at"]) - datetime.fromisoformat(event["timestamp"])
    assert gap == timedelta(seconds=10)


def test_contacts_pagination_with_cursor(server_shop: ServerShop) -> None:
    """limit + cursor walk every contact exactly once."""
    server, shop, _db = server_shop
    post(
        server,
        shop,
        "/v1/batch",
        {"batch": [{"type": "identify", "userId": f"p{i}"} for i in range(7)]},
    )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = admin(server, shop, "/api/v1/contacts", **params).json()
        seen += [c["user_id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"p{i}" for i in range(7)]
    bad = admin(server, shop, "/api/v1/contacts", limit=0)
    assert bad.status_code == 400
    assert bad.json()["field"] == "limit"
    bad_cursor = admin(server, shop, "/api/v1/contacts", cursor="!!!")
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["field"] == "cursor"


def test_contact_lookup_by_phone_in_any_format(server_shop: ServerShop) -> None:
    server, shop, _db = server_shop
    post(
        server, shop, "/v1/identify", {"userId": "tel", "traits": {"phone": "+55 (11) 91234-5678"}}
    )
    found = admin(server, shop, "/api/v1/contacts", phone="11912345678").json()["data"]
    assert [c["user_id"] for c in found] == ["tel"]


def test_openapi_documents_the_api(server_shop: ServerShop) -> None:
    server, _shop, _db = server_shop
    spec = httpx.get(f"{server.url}/api/openapi.json").json()
    for path in (
        "/v1/track",
        "/v1/batch",
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/events",
    ):
        assert path in spec["paths"]


def test_nothing_is_counted_before_it_is_stored(server_shop: ServerShop) -> None:
    """After a 200 the event is readable from the database by another connection (durable)."""
    server, shop, db = server_shop
    response = post(server, shop, "/v1/track", {"userId": "d", "event": "x", "messageId": "dur-1"})
    assert response.status_code == 200
    with db.read() as session:
        assert (
            session.scalar(select(Event.message_id).where(Event.workspace_id == shop.ref.id))
            == "dur-1"
        )
        assert (
            session.scalar(
                select(func.count()).select_from(Contact).where(Contact.workspace_id == shop.ref.id)
            )
            == 1
        )
