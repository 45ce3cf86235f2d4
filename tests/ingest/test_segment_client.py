"""The real Segment Python client talks to a live `jornada serve` unchanged."""

from __future__ import annotations

import httpx
import pytest
import segment.analytics as segment_analytics
from segment.analytics.client import Client

from jornada.db import Database
from tests.conftest import Shop, make_shop
from tests.support.server import LiveServer


def _send_with_segment_client(server: LiveServer, shop: Shop) -> None:
    errors: list[Exception] = []
    client = Client(
        write_key=shop.keys.write_key,
        host=server.url,
        sync_mode=False,
        on_error=lambda error, _batch: errors.append(error),
        max_retries=1,
        upload_interval=0.05,
    )
    client.identify(
        "cliente-42",
        {
            "email": "Maria.Silva@Example.com.br",
            "phone": "+55 21 99876-5432",
            "consent": {"email_marketing": True, "whatsapp_marketing": False},
        },
        anonymous_id="anon-42",
    )
    client.track(
        "cliente-42",
        "Product Viewed",
        {"product_id": "tenis-01", "name": "Tênis Corrida", "price": 299.9},
    )
    client.page(
        "cliente-42", category="loja", name="Home", properties={"url": "https://loja.test/"}
    )
    client.flush()
    client.join()
    assert errors == []


def _check_contact(server: LiveServer, shop: Shop) -> None:
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    found = httpx.get(
        f"{server.url}/api/v1/contacts", params={"user_id": "cliente-42"}, headers=headers
    ).json()["data"]
    assert len(found) == 1
    contact = found[0]
    assert contact["email"] == "maria.silva@example.com.br"
    assert contact["phone"] == "+5521998765432"
    assert contact["consent"]["email_marketing"]["granted"] is True
    assert contact["consent"]["whatsapp_marketing"]["granted"] is False
    assert contact["commerce"]["last_product_viewed"]["product_id"] == "tenis-01"
    assert contact["commerce"]["last_product_viewed"]["price"] == "299.90"
    events = httpx.get(
        f"{server.url}/api/v1/contacts/{contact['id']}/events", headers=headers
    ).json()["data"]
    assert sorted(e["type"] for e in events) == ["identify", "page", "track"]
    assert {e["event"] for e in events} == {None, "Product Viewed", "Home"}
    assert all(e["message_id"] for e in events)


def test_segment_client_identify_track_page_sqlite(
    server_shop: tuple[LiveServer, Shop, Database],
) -> None:
    """identify, track and page from segment-analytics-python land on one resolved contact."""
    # given
    server, shop, _db = server_shop
    # when
    _send_with_segment_client(server, shop)
    # then
    _check_contact(server, shop)


@pytest.mark.postgres
def test_segment_client_identify_track_page_postgresql(live_server_pg: LiveServer) -> None:
    """The same on a live server backed by PostgreSQL."""
    db = Database(live_server_pg.database_url)
    shop = make_shop(db)
    _send_with_segment_client(live_server_pg, shop)
    _check_contact(live_server_pg, shop)
    db.dispose()


def test_segment_module_api_also_works(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """The module-level `segment.analytics` facade (what most apps use) works with host set."""
    server, shop, _db = server_shop
    segment_analytics.write_key = shop.keys.write_key
    segment_analytics.host = server.url
    segment_analytics.sync_mode = True
    try:
        segment_analytics.track("cliente-7", "Signed Up", {"plan": "newsletter"})
        segment_analytics.flush()
    finally:
        segment_analytics.default_client = None
    contacts = httpx.get(
        f"{server.url}/api/v1/contacts",
        params={"user_id": "cliente-7"},
        headers={"Authorization": f"Bearer {shop.keys.secret_key}"},
    ).json()["data"]
    assert len(contacts) == 1
