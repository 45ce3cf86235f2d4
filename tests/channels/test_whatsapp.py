"""WhatsApp through a local Cloud API contract server, and the webhook through a live server."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from jornada.channels.health import integration_health
from jornada.channels.models import StoredTemplate
from jornada.channels.providers import Keyring, set_provider
from jornada.channels.whatsapp.webhook import parse_notification
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.events import Event
from jornada.events.canonical import MESSAGE_REPLIED
from jornada.flows import FlowRun, install, library_flows
from jornada.ingest import accept_messages
from jornada.outbox import enqueue
from jornada.scheduler import tick
from jornada.workspaces import Workspace
from tests.channels.conftest import KEYS, courier, messages, outbox, send_now
from tests.channels.test_tracking import server_keys
from tests.conftest import Shop
from tests.support.server import LiveServer
from tests.support.whatsapp import CloudApi
from tests.test_cli import jornada

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo
PHONE = "+5511987654321"
APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-me-please"

Live = tuple[LiveServer, Shop, Database]


@pytest.fixture
def cloud_api() -> Iterator[CloudApi]:
    """A running fake Cloud API on a free loopback port."""
    api = CloudApi().start()
    yield api
    api.stop()


def use_cloud_api(
    database: Database, shop: Shop, api: CloudApi, at: datetime, keys: Keyring = KEYS
) -> None:
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            "whatsapp",
            options={"phone_number_id": api.phone_number_id},
            secrets={
                "access_token": api.token,
                "app_secret": APP_SECRET,
                "verify_token": VERIFY_TOKEN,
            },
            base_url=api.url,
            now=at,
            keys=keys,
        )


def whatsapp_customer(database: Database, shop: Shop, at: datetime) -> str:
    """Ana, with a phone and WhatsApp marketing consent since the day before ``at``."""
    result = accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "identify",
                "userId": "ana",
                "timestamp": (at - timedelta(days=1)).isoformat(),
                "traits": {
                    "first_name": "Ana",
                    "phone": PHONE,
                    "consent": {"whatsapp_marketing": True},
                },
            }
        ],
        received_at=at - timedelta(days=1),
    )
    assert result.rejected == []
    with database.read() as session:
        contact_id = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == "ana")
        )
    assert contact_id is not None
    return contact_id


def enqueue_whatsapp(
    database: Database, shop: Shop, contact_id: str, at: datetime, template: str = "nps-survey"
) -> None:
    """What a flow's WhatsApp step leaves in the outbox."""
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=contact_id,
            kind="send",
            channel="whatsapp",
            idempotency_key=f"test:{contact_id}:{template}:{at.isoformat()}",
            payload={"template": template, "purpose": "marketing"},
            now=at,
        )


def own_wording(database: Database, shop: Shop, at: datetime) -> None:
    """The workspace rewrote nps-survey: no longer the text registered with Meta."""
    with database.write() as session:
        session.add(
            StoredTemplate(
                workspace_id=shop.ref.id,
                template_id="nps-survey",
                channel="whatsapp",
                subject=None,
                body="{{ contact.traits.first_name }}, como foi sua compra?",
                updated_at=at,
            )
        )


# -- settings ------------------------------------------------------------------------------
GOOD_SECRETS = {"access_token": "t", "app_secret": "s", "verify_token": "v"}


@pytest.mark.parametrize(
    ("_case", "options", "secrets", "field"),
    [
        ("no number", {}, GOOD_SECRETS, "options.phone_number_id"),
        ("number not digits", {"phone_number_id": "abc"}, GOOD_SECRETS, "options.phone_number_id"),
        (
            "bad version",
            {"phone_number_id": "1", "api_version": "21"},
            GOOD_SECRETS,
            "options.api_version",
        ),
        (
            "unknown option",
            {"phone_number_id": "1", "colour": "red"},
            GOOD_SECRETS,
            "options.colour",
        ),
        (
            "no app secret",
            {"phone_number_id": "1"},
            {"access_token": "t", "verify_token": "v"},
            "secrets.app_secret",
        ),
    ],
)
def test_bad_whatsapp_settings_name_the_field(
    database: Database,
    shop: Shop,
    _case: str,
    options: dict[str, Any],
    secrets: dict[str, str | None],
    field: str,
) -> None:
    with database.write() as session, pytest.raises(InvalidInput) as error:
        set_provider(
            session, shop.ref.id, "whatsapp", options=options, secrets=secrets, now=T0, keys=KEYS
        )
    assert error.value.field == field


def test_cli_sets_whatsapp_without_printing_the_secrets(tmp_path: Path) -> None:
    """`channels set whatsapp` stores it with the defaults and prints the webhook's address."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    args = ["channels", "set", "whatsapp", "--workspace", "loja", "--phone-number-id", "1098"]
    secrets = ["--access-token", "EAAG-secret", "--app-secret", "app-s3cret"]
    secrets += ["--verify-token", "verify-s3cret"]
    set_ = jornada(url, *args, *secrets, "--base-url", "http://127.0.0.1:9/")
    assert set_.returncode == 0, set_.stderr
    output = set_.stdout + set_.stderr
    assert "phone number 1098 (API v21.0, templates in pt_BR), token ****" in output
    assert "/webhooks/whatsapp/" in output
    for secret in ("EAAG-secret", "app-s3cret", "verify-s3cret"):
        assert secret not in output
    (view,) = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    assert (view["provider"], view["base_url"]) == ("whatsapp_cloud", "http://127.0.0.1:9")
    assert view["options"] == {
        "phone_number_id": "1098",
        "api_version": "v21.0",
        "language": "pt_BR",
    }
    assert view["secrets"] == dict.fromkeys(
        ["access_token", "app_secret", "verify_token"], "********"
    )
    # a new number, the secrets kept
    again = jornada(url, *args[:-1], "2098")
    assert again.returncode == 0, again.stderr
    assert "phone number 2098" in again.stdout + again.stderr


# -- sending -------------------------------------------------------------------------------
def test_approved_template_reaches_the_cloud_api_with_its_parameters(
    database: Database, shop: Shop, cloud_api: CloudApi
) -> None:
    """The registered template, its body variables in order, the token and the number id."""
    # given
    use_cloud_api(database, shop, cloud_api, T0)
    ana = whatsapp_customer(database, shop, T0)
    enqueue_whatsapp(database, shop, ana, T0)
    # when
    send_now(database, T0)
    # then
    (request,) = cloud_api.received
    assert request.path == "/v21.0/109876543210/messages"
    assert request.authorization == "Bearer EAAG-test-token"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511987654321",
        "type": "template",
        "template": {
            "name": "nps_survey",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Ana"},
                        {"type": "text", "text": shop.ref.name},
                    ],
                },
                # its quick replies (the NPS ranges), each tap answering with its id
                *(
                    {
                        "type": "button",
                        "sub_type": "quick_reply",
                        "index": str(index),
                        "parameters": [{"type": "payload", "payload": payload}],
                    }
                    for index, payload in enumerate(["nps-0-6", "nps-7-8", "nps-9-10"])
                ),
            ],
        },
    }
    (message,) = messages(database, shop)
    assert (message.status, message.provider, message.sent_at) == ("sent", "whatsapp_cloud", T0)
    assert message.provider_message_id == "wamid.TEST000001"


def test_own_wording_goes_as_free_form_text_inside_the_window(
    database: Database, shop: Shop, cloud_api: CloudApi
) -> None:
    """Outside the window it is suppressed; after Ana writes, it goes free-form: her wording,
    with the library template's buttons as interactive reply buttons."""
    use_cloud_api(database, shop, cloud_api, T0)
    ana = whatsapp_customer(database, shop, T0)
    own_wording(database, shop, T0)
    enqueue_whatsapp(database, shop, ana, T0)
    send_now(database, T0)
    assert outbox(database, shop) == [
        ("suppressed", "whatsapp: outside the 24-hour window and the template is not approved")
    ]
    # Ana writes on WhatsApp: her window opens
    later = T0 + timedelta(days=1)
    accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "track",
                "event": MESSAGE_REPLIED,
                "userId": "ana",
                "timestamp": (later - timedelta(hours=1)).isoformat(),
                "properties": {"channel": "whatsapp", "text": "oi"},
            }
        ],
        received_at=later,
    )
    enqueue_whatsapp(database, shop, ana, later)
    send_now(database, later)
    (request,) = cloud_api.received
    assert request.body["type"] == "interactive"
    interactive = request.body["interactive"]
    assert interactive["body"] == {"text": "Ana, como foi sua compra?"}
    assert [b["reply"]["id"] for b in interactive["action"]["buttons"]] == [
        "nps-0-6",
        "nps-7-8",
        "nps-9-10",
    ]


def test_a_500_keeps_the_message_queued_and_opens_an_incident(
    database: Database, shop: Shop, cloud_api: CloudApi
) -> None:
    """The API down: nothing lost, no attempt counted; sent once it answers again."""
    use_cloud_api(database, shop, cloud_api, T0)
    ana = whatsapp_customer(database, shop, T0)
    enqueue_whatsapp(database, shop, ana, T0)
    cloud_api.fail_with = (500, None)
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", 0)
    assert message.error is not None
    assert "HTTP 500" in message.error
    with database.read() as session:
        (health,) = integration_health(session, shop.ref.id)["channels"]
    assert (health["channel"], health["status"], health["queued"]) == ("whatsapp", "down", 1)
    # when the API is back
    cloud_api.fail_with = None
    send_now(database, T0 + timedelta(hours=1))
    (message,) = messages(database, shop)
    assert (message.status, message.provider_message_id) == ("sent", "wamid.TEST000001")
    with database.read() as session:
        (health,) = integration_health(session, shop.ref.id)["channels"]
    assert health["status"] == "ok"


def test_a_400_fails_the_message_with_the_api_code(
    database: Database, shop: Shop, cloud_api: CloudApi
) -> None:
    """A Graph API error for this message is final; its code and details are kept."""
    use_cloud_api(database, shop, cloud_api, T0)
    ana = whatsapp_customer(database, shop, T0)
    enqueue_whatsapp(database, shop, ana, T0)
    cloud_api.fail_with = (
        400,
        {
            "error": {
                "message": "(#132001) Template name does not exist in the translation",
                "type": "OAuthException",
                "code": 132001,
                "error_data": {"messaging_product": "whatsapp", "details": "nps_survey pt_BR"},
                "fbtrace_id": "AbC",
            }
        },
    )
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.status, message.failed_at) == ("failed", T0)
    assert message.error == (
        "WhatsApp Cloud API: HTTP 400 code 132001: (#132001) Template name does not exist"
        " in the translation (nps_survey pt_BR)"
    )


# -- the webhook ---------------------------------------------------------------------------
def webhook(live: LiveServer, shop: Shop) -> str:
    return f"{live.url}/webhooks/whatsapp/{shop.ref.id}"


def post_signed(
    live: LiveServer, shop: Shop, payload: dict[str, Any], secret: str = APP_SECRET
) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(
        webhook(live, shop),
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
        timeout=10,
    )


def notification(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA-1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "551130000000",
                                "phone_number_id": "109876543210",
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def inbound_text(at: datetime, text: str = "Quero um orçamento") -> dict[str, Any]:
    return notification(
        {
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511987654321"}],
            "messages": [
                {
                    "from": "5511987654321",
                    "id": "wamid.INBOUND1",
                    "timestamp": str(int(at.timestamp())),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
    )


def replies(database: Database, shop: Shop) -> list[tuple[str, datetime, dict[str, Any]]]:
    with database.read() as session:
        return [
            (e.contact_id, e.timestamp, dict(e.properties or {}))
            for e in session.scalars(
                select(Event).where(
                    Event.workspace_id == shop.ref.id, Event.event == MESSAGE_REPLIED
                )
            )
        ]


def test_handshake_echoes_the_challenge_only_for_the_right_token(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """Meta's GET: the right verify token gets the challenge back as text, a wrong one a 403."""
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, datetime.now(UTC), server_keys(live))
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    right = httpx.get(webhook(live, shop), params={**query, "hub.verify_token": VERIFY_TOKEN})
    assert (right.status_code, right.text) == (200, "1158201444")
    assert right.headers["content-type"].startswith("text/plain")
    wrong = httpx.get(webhook(live, shop), params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 403


def test_signed_inbound_message_is_a_reply_that_opens_the_window(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """Ana's message becomes Message Replied for her; a free-form message may then go."""
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, T0, server_keys(live))
    ana = whatsapp_customer(database, shop, T0)
    own_wording(database, shop, T0)
    # when Ana writes an hour before T0
    answer = post_signed(live, shop, inbound_text(T0 - timedelta(hours=1)))
    # then
    assert answer.status_code == 200
    assert answer.json() == {"messages": 1, "statuses": 0, "held": 0}
    ((contact, at, properties),) = replies(database, shop)
    assert (contact, at) == (ana, T0 - timedelta(hours=1))
    assert properties == {
        "channel": "whatsapp",
        "text": "Quero um orçamento",
        "type": "text",
        "whatsapp_message_id": "wamid.INBOUND1",
    }
    # Meta delivers a notification again: still one reply
    assert post_signed(live, shop, inbound_text(T0 - timedelta(hours=1))).status_code == 200
    assert len(replies(database, shop)) == 1
    # her window is open: the workspace's own wording goes, as text
    enqueue_whatsapp(database, shop, ana, T0)
    send_now(database, T0, server_keys(live), live.url)
    (request,) = cloud_api.received
    assert request.body["type"] == "interactive"  # free-form, not the registered template


def test_bad_or_missing_signature_is_a_401_and_nothing_is_stored(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, T0, server_keys(live))
    whatsapp_customer(database, shop, T0)
    forged = post_signed(live, shop, inbound_text(T0), secret="not-the-app-secret")
    assert forged.status_code == 401
    unsigned = httpx.post(webhook(live, shop), json=inbound_text(T0), timeout=10)
    assert unsigned.status_code == 401
    assert replies(database, shop) == []


def status_of_first_send(name: str, at: datetime, **extra: Any) -> dict[str, Any]:
    """A status of wamid.TEST000001, the id the fake Cloud API gives its first send."""
    entry = {
        "id": "wamid.TEST000001",
        "status": name,
        "timestamp": str(int(at.timestamp())),
        "recipient_id": "5511987654321",
        **extra,
    }
    return notification({"statuses": [entry]})


def test_status_callbacks_move_the_message_forward_and_failures_keep_the_code(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """sent → delivered → read (our opened), each with its time; failed keeps the API's code."""
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, T0, server_keys(live))
    ana = whatsapp_customer(database, shop, T0)
    enqueue_whatsapp(database, shop, ana, T0)
    send_now(database, T0, server_keys(live), live.url)
    (message,) = messages(database, shop)
    assert message.provider_message_id == "wamid.TEST000001"

    delivered, read = T0 + timedelta(minutes=1), T0 + timedelta(minutes=5)
    assert post_signed(live, shop, status_of_first_send("delivered", delivered)).json() == {
        "messages": 0,
        "statuses": 1,
        "held": 0,
    }
    assert post_signed(live, shop, status_of_first_send("read", read)).status_code == 200
    (message,) = messages(database, shop)
    assert (message.status, message.delivered_at, message.opened_at) == (
        "opened",
        delivered,
        read,
    )
    # a late "delivered" does not move it back
    post_signed(live, shop, status_of_first_send("delivered", read + timedelta(minutes=1)))
    (message,) = messages(database, shop)
    assert (message.status, message.delivered_at) == ("opened", delivered)
    failure = {"errors": [{"code": 131026, "title": "Message undeliverable"}]}
    post_signed(live, shop, status_of_first_send("failed", read + timedelta(minutes=2), **failure))
    (message,) = messages(database, shop)
    assert (message.status, message.error) == (
        "failed",
        "WhatsApp code 131026: Message undeliverable",
    )


def test_statuses_that_come_before_the_send_is_recorded_are_held_then_applied(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """Meta may report on a wamid before the delivery pass has written it: nothing is lost."""
    # given
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, T0, server_keys(live))
    ana = whatsapp_customer(database, shop, T0)
    enqueue_whatsapp(database, shop, ana, T0)
    delivered, read = T0 + timedelta(seconds=2), T0 + timedelta(minutes=5)
    # when: the reports arrive first, read before delivered
    assert post_signed(live, shop, status_of_first_send("read", read)).json() == {
        "messages": 0,
        "statuses": 0,
        "held": 1,
    }
    post_signed(live, shop, status_of_first_send("delivered", delivered))
    send_now(database, T0, server_keys(live), live.url)
    # then: recording the send applies them
    (message,) = messages(database, shop)
    assert (message.provider_message_id, message.status) == ("wamid.TEST000001", "opened")
    assert (message.sent_at, message.delivered_at, message.opened_at) == (T0, delivered, read)


def test_a_held_status_whose_message_never_comes_is_forgotten_after_a_day(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """A report on a message Jornada did not send (another app on the number) is not kept."""
    # given: a report on a wamid nobody recorded
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, T0, server_keys(live))
    answer = post_signed(live, shop, status_of_first_send("delivered", T0))
    assert answer.json() == {"messages": 0, "statuses": 0, "held": 1}
    # when: the scheduler runs a day later (the server holds it from its own clock)
    tick(database, datetime.now(UTC) + timedelta(days=1, minutes=1))
    # then: a send the fake happens to answer with that wamid is not touched by it
    enqueue_whatsapp(database, shop, whatsapp_customer(database, shop, T0), T0)
    send_now(database, T0, server_keys(live), live.url)
    (message,) = messages(database, shop)
    assert (message.provider_message_id, message.status) == ("wamid.TEST000001", "sent")
    assert message.delivered_at is None


def test_cart_flow_sends_the_template_and_a_reply_ends_the_run(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """The library's cart flow: the WhatsApp template an hour later; Ana answers, the run exits."""
    live, shop, database = server_shop
    keys = server_keys(live)
    cart = next(f for f in library_flows() if f.key == "cart-abandonment")
    with database.write() as session:
        install(session, shop.ref.id, cart, now=T0)
        workspace = session.get(Workspace, shop.ref.id)
        assert workspace is not None
        workspace.url = "https://loja.test"
    use_cloud_api(database, shop, cloud_api, T0, keys)
    ana = whatsapp_customer(database, shop, T0)
    accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "track",
                "userId": "ana",
                "event": "Checkout Started",
                "timestamp": T0.isoformat(),
                "properties": {"checkout_url": "https://loja.test/c/1", "value": "39.90"},
            }
        ],
        received_at=T0,
    )
    # when the hour has passed
    tick(database, T0 + timedelta(hours=1), courier=courier(keys, live.url))
    # then the registered template went, its three variables filled in
    (request,) = cloud_api.received
    template = request.body["template"]
    assert template["name"] == "cart_abandonment_whatsapp"
    (body,) = template["components"]
    values = [p["text"] for p in body["parameters"]]
    assert values[0] == "Ana"
    assert values[1].replace("\xa0", " ") == "R$ 39,90"
    assert values[2] == "https://loja.test/c/1"
    # when Ana answers by tapping reply on it
    answer_at = T0 + timedelta(hours=1, minutes=5)
    reply = inbound_text(answer_at, "Tenho uma dúvida sobre o frete")
    reply["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {
        "from": "551130000000",
        "id": "wamid.TEST000001",
    }
    assert post_signed(live, shop, reply).status_code == 200
    tick(database, answer_at + timedelta(minutes=1), courier=courier(keys, live.url))
    # then the run ended on the reply and the message shows it
    with database.read() as session:
        (run,) = session.scalars(
            select(FlowRun).where(FlowRun.workspace_id == shop.ref.id, FlowRun.contact_id == ana)
        )
    assert run.status == "exited"
    whatsapp = next(m for m in messages(database, shop) if m.channel == "whatsapp")
    assert (whatsapp.status, whatsapp.replied_at) == ("replied", answer_at)
    ((_, _, properties),) = replies(database, shop)
    assert (properties["message_id"], properties["template"]) == (
        whatsapp.id,
        "cart-abandonment-whatsapp",
    )


def test_button_and_list_replies_carry_their_payload() -> None:
    """A template's quick-reply button and an interactive reply: the text shown, the payload kept."""
    at = T0 - timedelta(minutes=3)
    base = {"from": "5511987654321", "timestamp": str(int(at.timestamp()))}
    payload = notification(
        {
            "messages": [
                {
                    **base,
                    "id": "wamid.B",
                    "type": "button",
                    "button": {"text": "Quero um orçamento", "payload": "ORCAMENTO"},
                    "context": {"from": "551130000000", "id": "wamid.OURS"},
                },
                {
                    **base,
                    "id": "wamid.I",
                    "type": "interactive",
                    "interactive": {
                        "type": "list_reply",
                        "list_reply": {"id": "nps-9", "title": "9"},
                    },
                },
                {**base, "id": "wamid.A", "type": "audio", "audio": {"id": "media-1"}},
            ]
        }
    )
    inbound, statuses = parse_notification(payload, T0)
    assert statuses == []
    assert [(m.wamid, m.type, m.text, m.payload, m.context_wamid) for m in inbound] == [
        ("wamid.B", "button", "Quero um orçamento", "ORCAMENTO", "wamid.OURS"),
        ("wamid.I", "interactive", "9", "nps-9", None),
        ("wamid.A", "audio", None, None, None),
    ]
    assert {(m.phone, m.at) for m in inbound} == {(PHONE, at)}


def test_a_stranger_writing_becomes_a_contact_with_that_phone(
    server_shop: Live, cloud_api: CloudApi
) -> None:
    """No contact has the number: the reply makes one, so the window and the inbox can use it."""
    live, shop, database = server_shop
    use_cloud_api(database, shop, cloud_api, T0, server_keys(live))
    assert post_signed(live, shop, inbound_text(T0)).status_code == 200
    ((contact_id, at, properties),) = replies(database, shop)
    assert (at, properties["text"]) == (T0, "Quero um orçamento")
    with database.read() as session:
        contact = session.get(Contact, contact_id)
    assert contact is not None
    assert contact.phone == PHONE
