"""Web Push in a real browser: the shop's page runs subscribe.js, the service worker shows the push.

Headless Chromium loads a page of the shop's own site (another origin) that
includes ``/push/subscribe.js`` from a live ``jornada serve``, with the one-line
``/jornada-sw.js`` the docs ask for. One part of the browser is stood in for:
``PushManager.subscribe`` registers with the browser vendor's push service
(FCM for Chromium), which this machine cannot reach, so a page script answers
it with a subscription of the local push service (tests/support/push.py),
holding the keys the push is encrypted to. Everything else is the browser's
own: the service worker registration, the permission, the cross-origin calls
to Jornada, and the worker's handling of the push, delivered through the
DevTools protocol as the push service would deliver it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from jornada.db import Database
from jornada.ingest import accept_messages
from tests.channels.conftest import messages, send_now
from tests.channels.test_push import ana_subscribed, enqueue_push, push_template, use_webpush
from tests.channels.test_tracking import server_keys
from tests.conftest import Shop
from tests.support.browser import ShopSite, chromium
from tests.support.push import PushService, unb64url
from tests.support.server import LiveServer

Live = tuple[LiveServer, Shop, Database]

#: Answers ``pushManager.subscribe`` with the local push service's subscription.
STAND_IN = """
(() => {
  const made = %s;
  let current = null;
  PushManager.prototype.getSubscription = async function () { return current; };
  PushManager.prototype.subscribe = async function (options) {
    const registration = await navigator.serviceWorker.getRegistration();
    if (!registration || !registration.active) {  // as Chromium answers
      throw new DOMException("Subscription failed - no active Service Worker", "AbortError");
    }
    window.applicationServerKeyUsed = Array.from(new Uint8Array(options.applicationServerKey));
    current = {
      endpoint: made.endpoint,
      options: { applicationServerKey: options.applicationServerKey },
      toJSON: () => made,
      unsubscribe: async () => { current = null; return true; },
    };
    return current;
  };
})();
"""

NOTIFICATIONS = """
async () => {
  const registration = await navigator.serviceWorker.ready;
  return (await registration.getNotifications()).map(
    (n) => ({ title: n.title, body: n.body, data: n.data }));
}
"""


@pytest.fixture
def push_service() -> Iterator[PushService]:
    service = PushService().start()
    yield service
    service.stop()


@pytest.fixture
def shop_site(server_shop: Live) -> Iterator[ShopSite]:
    """The shop's home page with the helper, and its service worker importing Jornada's
    (and installing slowly, as one that precaches pages does)."""
    live, _, _ = server_shop
    site = ShopSite(
        {
            "/": f'<!doctype html><title>Loja</title><script src="{live.url}/push/subscribe.js">'
            "</script><p>Loja da Ana</p>",
            "/jornada-sw.js": f'importScripts("{live.url}/push/sw.js");\n'
            # the shop's own work as its worker installs (precaching pages): a second here
            "self.addEventListener('install', (event) =>"
            " event.waitUntil(new Promise((done) => setTimeout(done, 1000))));\n",
        }
    ).start()
    yield site
    site.stop()


def test_the_shop_page_subscribes_and_the_service_worker_shows_the_push(
    server_shop: Live, push_service: PushService, shop_site: ShopSite
) -> None:
    # given: a shop with VAPID keys and a push template
    live, shop, database = server_shop
    keys, now = server_keys(live), datetime.now(UTC)
    public = use_webpush(database, shop, now, keys)
    push_template(database, shop, now)
    made = push_service.subscribe(public)
    with chromium() as browser:
        context = browser.new_context()
        context.grant_permissions(["notifications"], origin=shop_site.origin)
        context.add_init_script(STAND_IN % json.dumps(made.json()))
        page = context.new_page()
        devtools = context.new_cdp_session(page)
        registrations: list[dict[str, Any]] = []
        devtools.on(
            "ServiceWorker.workerRegistrationUpdated",
            lambda event: registrations.extend(event["registrations"]),
        )
        versions: dict[str, dict[str, Any]] = {}  # the worker's versions, latest state each
        devtools.on(
            "ServiceWorker.workerVersionUpdated",
            lambda event: versions.update({v["versionId"]: v for v in event["versions"]}),
        )
        devtools.send("ServiceWorker.enable")
        page.goto(f"{shop_site.origin}/")
        # when: the page asks for notifications, as a shop's "allow" button would
        answer = page.evaluate(
            "(writeKey) => jornadaPush.subscribe({ writeKey, userId: 'ana' })",
            shop.keys.write_key,
        )
        # then: subscribed with the workspace's key, stored for Ana with her consent
        assert answer["success"] is True, answer
        used = bytes(page.evaluate("window.applicationServerKeyUsed"))
        assert used == unb64url(public)
        ana, row, consent = ana_subscribed(database, shop)
        assert (row.contact_id, row.endpoint) == (ana.id, made.endpoint)
        assert "Chrome" in (row.user_agent or "")
        assert [(c.channel, c.granted, c.source) for c in consent] == [
            ("push", True, "browser permission")
        ]
        # when: Jornada sends her a push, and the push service hands it to the browser
        accept_messages(
            database,
            shop.ref,
            [{"type": "identify", "userId": "ana", "traits": {"first_name": "Ana"}}],
            received_at=now,
        )
        enqueue_push(database, shop, ana.id, now)
        send_now(database, now, keys, live.url)
        assert push_service.problems == []
        (push,) = push_service.received
        (registration,) = {
            r["registrationId"]
            for r in registrations
            if r["scopeURL"].startswith(shop_site.origin) and not r["isDeleted"]
        }

        def worker(running_status: str) -> bool:
            return any(
                v["registrationId"] == registration
                and v["status"] == "activated"
                and v["runningStatus"] == running_status
                for v in versions.values()
            )

        # the push service wakes the worker to deliver; here it is woken first, as it would be
        _wait_until(
            page, lambda: worker("running") or worker("stopped"), "worker activated", versions
        )
        if not worker("running"):
            devtools.send("ServiceWorker.startWorker", {"scopeURL": f"{shop_site.origin}/"})
        _wait_until(page, lambda: worker("running"), "worker running", versions)
        devtools.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": shop_site.origin,
                "registrationId": registration,
                "data": json.dumps(push.payload),
            },
        )
        # then: the service worker shows it, the click target kept
        shown = _shown(page)
        assert shown == [
            {
                "title": "Ana, seu carrinho",
                "body": "Ainda dá tempo de finalizar a compra.",
                "data": {"url": "https://loja.test/c/1"},
            }
        ], f"worker versions: {versions}"
    (message,) = messages(database, shop)
    assert message.status == "sent"


def _wait_until(page: Any, condition: Any, what: str, seen: Any) -> None:
    """Let the browser work until ``condition()`` holds (20 s at most, else fail saying what)."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after 20 s; seen {seen}"
        page.wait_for_timeout(50)  # also delivers the DevTools events


def _shown(page: Any) -> list[dict[str, Any]]:
    """The notifications the service worker shows, once it has shown one (20 s at most)."""
    deadline = time.monotonic() + 20
    while True:
        shown: list[dict[str, Any]] = page.evaluate(NOTIFICATIONS)
        if shown or time.monotonic() > deadline:
            return shown
        page.wait_for_timeout(50)
