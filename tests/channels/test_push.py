"""Web Push: VAPID keys from the CLI, subscriptions over HTTP, delivery to a local push service."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, select

from jornada.channels.health import integration_health
from jornada.channels.models import StoredTemplate
from jornada.channels.providers import Keyring, get_provider, load_keyring
from jornada.channels.push import PushSubscription, parse_subscription, public_key_of, subscribe
from jornada.channels.push.keys import set_up_vapid
from jornada.contacts import ConsentRecord, Contact
from jornada.db import Database
from jornada.ingest import accept_messages
from jornada.outbox import enqueue
from jornada.workspaces import Workspace, get_workspace_by_name
from tests.channels.conftest import KEYS, messages, send_now
from tests.channels.test_tracking import server_keys
from tests.conftest import Shop
from tests.support.push import Browser, PushService
from tests.support.server import LiveServer
from tests.test_cli import jornada

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)
SUBJECT = "mailto:loja@loja.test"
Live = tuple[LiveServer, Shop, Database]


@pytest.fixture
def push_service() -> Iterator[PushService]:
    """A running push service on a free loopback port."""
    service = PushService().start()
    yield service
    service.stop()


def use_webpush(database: Database, shop: Shop, at: datetime, keys: Keyring = KEYS) -> str:
    """VAPID keys for the shop; returns the public key."""
    with database.write() as session:
        return set_up_vapid(
            session, shop.ref.id, subject=SUBJECT, title="Loja da Ana", now=at, keys=keys
        ).public_key


def push_customer(database: Database, shop: Shop, at: datetime, *browsers: Browser) -> str:
    """Ana, who allowed notifications (push marketing consent) in each of ``browsers``."""
    result = accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "identify",
                "userId": "ana",
                "timestamp": (at - timedelta(days=1)).isoformat(),
                "traits": {"first_name": "Ana", "consent": {"push_marketing": True}},
            }
        ],
        received_at=at - timedelta(days=1),
    )
    assert result.rejected == []
    with database.write() as session:
        contact_id = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == "ana")
        )
        assert contact_id is not None
        for browser in browsers:
            subscribe(
                session,
                shop.ref.id,
                contact_id,
                parse_subscription(browser.json()),
                user_agent="Firefox",
                now=at,
            )
    return contact_id


def push_template(database: Database, shop: Shop, at: datetime) -> None:
    """A push template with a title (its subject), a text and the page a click opens."""
    with database.write() as session:
        session.add(
            StoredTemplate(
                workspace_id=shop.ref.id,
                template_id="cart-push",
                channel="push",
                subject="{{ contact.traits.first_name }}, seu carrinho",
                body="Ainda dá tempo de finalizar a compra.\n{{ trigger.checkout_url }}",
                updated_at=at,
            )
        )


def enqueue_push(database: Database, shop: Shop, contact_id: str, at: datetime) -> None:
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=contact_id,
            kind="send",
            channel="push",
            idempotency_key=f"test:{contact_id}:push:{at.isoformat()}",
            payload={
                "template": "cart-push",
                "purpose": "marketing",
                "trigger": {"checkout_url": "https://loja.test/c/1"},
            },
            now=at,
        )


def stored_endpoints(database: Database, shop: Shop) -> list[str]:
    with database.read() as session:
        return list(
            session.scalars(
                select(PushSubscription.endpoint)
                .where(PushSubscription.workspace_id == shop.ref.id)
                .order_by(PushSubscription.id)
            )
        )


def ana_subscribed(
    database: Database, shop: Shop
) -> tuple[Contact, PushSubscription, list[ConsentRecord]]:
    """Ana, the shop's one stored subscription, and Ana's consent records."""
    with database.read() as session:
        contact = session.scalars(
            select(Contact).where(Contact.workspace_id == shop.ref.id, Contact.user_id == "ana")
        ).one()
        (row,) = session.scalars(
            select(PushSubscription).where(PushSubscription.workspace_id == shop.ref.id)
        )
        consent = list(
            session.scalars(select(ConsentRecord).where(ConsentRecord.contact_id == contact.id))
        )
    return contact, row, consent


# -- keys ----------------------------------------------------------------------------------
def test_cli_makes_vapid_keys_prints_the_public_one_and_refuses_to_overwrite(
    tmp_path: Path,
) -> None:
    """The public key (65 bytes, uncompressed point) on stdout; the private one never shown."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    # the first time a subject is needed
    no_subject = jornada(url, "keys", "vapid", "--workspace", "loja")
    assert no_subject.returncode == 1
    assert "--subject mailto:" in no_subject.stderr
    # when
    made = jornada(url, "keys", "vapid", "--workspace", "loja", "--subject", SUBJECT)
    # then
    assert made.returncode == 0, made.stderr
    public = made.stdout.strip()
    raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    assert (len(raw), raw[0]) == (65, 4)
    database = Database(url)
    try:
        with database.read() as session:
            workspace = get_workspace_by_name(session, "loja")
            config = get_provider(
                session, workspace.id, "push", keys=load_keyring(None, database.url)
            )
    finally:
        database.dispose()
    assert config is not None
    assert (config.provider, config.options["public_key"]) == ("webpush", public)
    assert config.options["subject"] == SUBJECT
    private = config.secrets["private_key"]
    assert public_key_of(private) == public
    assert private not in made.stdout + made.stderr
    # again without --rotate: refused, the keys kept
    again = jornada(url, "keys", "vapid", "--workspace", "loja")
    assert again.returncode == 1
    assert "--rotate" in again.stderr
    # with --rotate: a new pair, and the warning about subscriptions
    rotated = jornada(url, "keys", "vapid", "--workspace", "loja", "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip() not in ("", public)


def test_channels_set_push_makes_keys_once_then_changes_only_the_defaults(tmp_path: Path) -> None:
    """`jornada channels set push`, like the other channels: keys the first time, then the
    subject and the notification defaults change and the key pair stays."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    first = jornada(
        url,
        "channels",
        "set",
        "push",
        "--workspace",
        "loja",
        "--subject",
        SUBJECT,
        "--daily-cap",
        "500",
    )
    assert first.returncode == 0, first.stderr
    public = first.stdout.strip()
    again = jornada(
        url,
        "channels",
        "set",
        "push",
        "--workspace",
        "loja",
        "--title",
        "Loja da Ana",
        "--icon",
        "https://loja.test/icone.png",
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == public  # the same pair: subscriptions stay valid
    bad = jornada(url, "channels", "set", "push", "--workspace", "loja", "--icon", "ftp://x/y.png")
    assert bad.returncode == 1
    assert "icon" in bad.stderr
    (view,) = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    assert (view["channel"], view["provider"]) == ("push", "webpush")
    assert view["options"]["subject"] == SUBJECT
    assert view["options"]["title"] == "Loja da Ana"
    assert view["options"]["icon"] == "https://loja.test/icone.png"
    assert view["secrets"] == {"private_key": "********"}


def test_rotating_drops_the_subscriptions_made_with_the_old_key(
    database: Database, shop: Shop, push_service: PushService
) -> None:
    """They would be refused by the push service; the browsers subscribe again."""
    old = use_webpush(database, shop, T0)
    push_customer(database, shop, T0, push_service.subscribe(old))
    with database.write() as session:
        rotated = set_up_vapid(session, shop.ref.id, subject=None, rotate=True, now=T0, keys=KEYS)
    assert (rotated.generated, rotated.dropped) == (True, 1)
    assert rotated.public_key != old
    assert stored_endpoints(database, shop) == []


# -- subscriptions over HTTP ----------------------------------------------------------------
def write_key_auth(shop: Shop) -> dict[str, str]:
    token = base64.b64encode(f"{shop.keys.write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_the_key_endpoint_serves_the_public_key_to_any_origin(server_shop: Live) -> None:
    live, shop, database = server_shop
    public = use_webpush(database, shop, datetime.now(UTC), server_keys(live))
    answer = httpx.get(f"{live.url}/v1/push/key", headers=write_key_auth(shop), timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"publicKey": public})
    assert answer.headers["access-control-allow-origin"] == "*"
    preflight = httpx.options(
        f"{live.url}/v1/push/subscriptions",
        headers={"Origin": "https://loja.test", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_subscribing_stores_the_browser_and_records_consent(
    server_shop: Live, push_service: PushService
) -> None:
    """The contact is identified by userId; push marketing consent comes from the browser."""
    live, shop, database = server_shop
    public = use_webpush(database, shop, datetime.now(UTC), server_keys(live))
    browser = push_service.subscribe(public)
    # when
    answer = httpx.post(
        f"{live.url}/v1/push/subscriptions",
        json={"userId": "ana", "subscription": browser.json()},
        headers={**write_key_auth(shop), "User-Agent": "Mozilla/5.0 Firefox/133"},
        timeout=10,
    )
    # then
    assert answer.status_code == 201, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    contact, row, consent = ana_subscribed(database, shop)
    assert (row.contact_id, row.endpoint, row.user_agent) == (
        contact.id,
        browser.endpoint,
        "Mozilla/5.0 Firefox/133",
    )
    assert (row.p256dh, row.auth) == (
        browser.json()["keys"]["p256dh"],
        browser.json()["keys"]["auth"],
    )
    assert [(c.channel, c.purpose, c.granted, c.source) for c in consent] == [
        ("push", "marketing", True, "browser permission")
    ]
    # the browser unsubscribes
    gone = httpx.request(
        "DELETE",
        f"{live.url}/v1/push/subscriptions",
        json={"endpoint": browser.endpoint},
        headers=write_key_auth(shop),
        timeout=10,
    )
    assert (gone.status_code, gone.json()) == (200, {"success": True, "removed": 1})
    assert stored_endpoints(database, shop) == []


def _tampered(change: dict[str, Any]) -> dict[str, Any]:
    good = {
        "endpoint": "https://push.example.com/send/abc",
        "keys": {
            "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
            "auth": "tBHItJI5svbpez7KI4CCXg",
        },
    }
    subscription = {**good, **{k: v for k, v in change.items() if k != "keys"}}
    subscription["keys"] = {**good["keys"], **change.get("keys", {})}
    return {"userId": "ana", "subscription": subscription}


@pytest.mark.parametrize(
    ("_case", "body", "field"),
    [
        ("no one", {"subscription": _tampered({})["subscription"]}, "userId"),
        ("no subscription", {"userId": "ana"}, "subscription"),
        (
            "ftp endpoint",
            _tampered({"endpoint": "ftp://push.example.com/x"}),
            "subscription.endpoint",
        ),
        (
            "plain http off loopback",
            _tampered({"endpoint": "http://push.example.com/x"}),
            "subscription.endpoint",
        ),
        (
            "short p256dh",
            _tampered({"keys": {"p256dh": "BNcRdreALRFX"}}),
            "subscription.keys.p256dh",
        ),
        ("p256dh not base64url", _tampered({"keys": {"p256dh": "?!"}}), "subscription.keys.p256dh"),
        ("auth of 8 bytes", _tampered({"keys": {"auth": "AAAAAAAAAAA"}}), "subscription.keys.auth"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field_and_nothing_is_stored(
    server_shop: Live, _case: str, body: dict[str, Any], field: str
) -> None:
    live, shop, database = server_shop
    use_webpush(database, shop, datetime.now(UTC), server_keys(live))
    answer = httpx.post(
        f"{live.url}/v1/push/subscriptions", json=body, headers=write_key_auth(shop), timeout=10
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert answer.headers["access-control-allow-origin"] == "*"
    assert stored_endpoints(database, shop) == []


def test_a_wrong_write_key_is_a_401_and_nothing_is_stored(
    server_shop: Live, push_service: PushService
) -> None:
    live, shop, database = server_shop
    public = use_webpush(database, shop, datetime.now(UTC), server_keys(live))
    body = {"userId": "ana", "subscription": push_service.subscribe(public).json()}
    forged = base64.b64encode(b"wk_not-the-key:").decode()
    for headers in ({"Authorization": f"Basic {forged}"}, {}):
        answer = httpx.post(
            f"{live.url}/v1/push/subscriptions", json=body, headers=headers, timeout=10
        )
        assert answer.status_code == 401
    key = httpx.get(f"{live.url}/v1/push/key", timeout=10)
    assert key.status_code == 401
    assert stored_endpoints(database, shop) == []
    with database.read() as session:
        assert (
            session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id)).all() == []
        )


def test_the_service_worker_and_the_helper_are_served_as_javascript(
    live_server: LiveServer,
) -> None:
    """sw.js shows the push and opens its url on a click; subscribe.js posts the subscription."""
    worker = httpx.get(f"{live_server.url}/push/sw.js", timeout=10)
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("application/javascript")
    for needed in (
        'addEventListener("push"',
        "showNotification",
        "notificationclick",
        "openWindow",
    ):
        assert needed in worker.text
    helper = httpx.get(f"{live_server.url}/push/subscribe.js", timeout=10)
    assert helper.headers["content-type"].startswith("application/javascript")
    for needed in ("/v1/push/key", "/v1/push/subscriptions", "applicationServerKey"):
        assert needed in helper.text


# -- delivery ------------------------------------------------------------------------------
def test_a_push_reaches_the_browser_encrypted_and_decrypts_to_the_rendered_message(
    server_shop: Live, push_service: PushService
) -> None:
    """Subscribed over HTTP, pushed by delivery: title, body and url as rendered, VAPID-signed."""
    live, shop, database = server_shop
    keys, now = server_keys(live), datetime.now(UTC)
    public = use_webpush(database, shop, now, keys)
    browser = push_service.subscribe(public)
    subscribed = httpx.post(
        f"{live.url}/v1/push/subscriptions",
        json={"userId": "ana", "subscription": browser.json()},
        headers=write_key_auth(shop),
        timeout=10,
    )
    assert subscribed.status_code == 201
    accept_messages(
        database,
        shop.ref,
        [{"type": "identify", "userId": "ana", "traits": {"first_name": "Ana"}}],
        received_at=now,
    )
    with database.read() as session:
        ana = session.scalars(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == "ana")
        ).one()
    push_template(database, shop, now)
    enqueue_push(database, shop, ana, now)
    # when
    send_now(database, now, keys, live.url)
    # then
    assert push_service.problems == []
    (push,) = push_service.received
    assert push.token == browser.token
    assert push.payload == {
        "title": "Ana, seu carrinho",
        "body": "Ainda dá tempo de finalizar a compra.",
        "url": "https://loja.test/c/1",
    }
    assert (push.claims["sub"], push.claims["aud"]) == (SUBJECT, push_service.origin)
    assert push.ttl == 86400
    (message,) = messages(database, shop)
    assert (message.status, message.provider) == ("sent", "webpush")
    assert message.provider_message_id == f"{push_service.origin}/message/1"


def test_a_410_removes_that_subscription_and_the_last_one_gone_fails_the_message(
    database: Database, shop: Shop, push_service: PushService
) -> None:
    """One browser gone, the other still there: sent; both gone: failed, nothing left."""
    public = use_webpush(database, shop, T0)
    laptop, phone = push_service.subscribe(public), push_service.subscribe(public)
    ana = push_customer(database, shop, T0, laptop, phone)
    push_template(database, shop, T0)
    # the laptop's subscription expired
    push_service.answer(laptop, 410)
    enqueue_push(database, shop, ana, T0)
    send_now(database, T0)
    assert [p.token for p in push_service.received] == [phone.token]
    assert stored_endpoints(database, shop) == [phone.endpoint]
    assert messages(database, shop)[0].status == "sent"
    # then the phone's too (404: unknown to the push service)
    push_service.answer(phone, 404)
    later = T0 + timedelta(days=1)
    enqueue_push(database, shop, ana, later)
    send_now(database, later)
    assert stored_endpoints(database, shop) == []
    last = messages(database, shop)[-1]
    assert (last.status, last.failed_at) == ("failed", later)
    assert last.error is not None
    assert "none is left" in last.error
    # and a contact with no subscription at all fails at once, saying so
    enqueue_push(database, shop, ana, later + timedelta(days=1))
    send_now(database, later + timedelta(days=1))
    final = messages(database, shop)[-1]
    assert (final.status, final.error) == (
        "failed",
        "push: the contact has no push subscription (never subscribed, or every browser's"
        " subscription expired)",
    )
    assert len(push_service.received) == 1


@pytest.mark.parametrize(
    ("_case", "status", "attempts", "health"),
    [("throttled", 429, 1, "ok"), ("service down", 500, 0, "down")],
)
def test_429_retries_and_5xx_keeps_the_message_queued_with_an_incident(
    database: Database,
    shop: Shop,
    push_service: PushService,
    _case: str,
    status: int,
    attempts: int,
    health: str,
) -> None:
    public = use_webpush(database, shop, T0)
    browser = push_service.subscribe(public)
    ana = push_customer(database, shop, T0, browser)
    push_template(database, shop, T0)
    push_service.answer(browser, status)
    enqueue_push(database, shop, ana, T0)
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", attempts)
    assert message.error == f"push service: HTTP {status}"
    assert stored_endpoints(database, shop) == [browser.endpoint]
    with database.read() as session:
        (channel,) = integration_health(session, shop.ref.id)["channels"]
    assert (channel["channel"], channel["status"]) == ("push", health)
    # once the service answers again, it goes
    del push_service.answers[browser.token]
    send_now(database, T0 + timedelta(hours=1))
    (message,) = messages(database, shop)
    assert message.status == "sent"
    assert json.dumps(push_service.received[0].payload["title"]) == '"Ana, seu carrinho"'


def test_migration_0014_matches_the_model(database: Database) -> None:
    """push_subscriptions as migrated is exactly what the ORM declares, on both databases."""
    mine = MetaData()
    for table in (PushSubscription.__table__, Workspace.__table__):  # workspaces: the FK target
        table.to_metadata(mine)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [
            d
            for d in compare_metadata(context, mine)
            if not (
                d[0] == "remove_table"
                or (d[0] == "remove_index" and d[1].table.name not in mine.tables)
            )
        ]
    assert diff == []
