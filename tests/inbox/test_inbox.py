"""The inbox through its public doors: signed WhatsApp and Twilio webhooks in, the admin API out."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from jornada.api.app import create_app
from jornada.clock import VirtualClock
from jornada.config import Settings
from jornada.db import Database
from jornada.events import Event
from jornada.events.canonical import MESSAGE_REPLIED
from jornada.inbox import ConversationMessage
from tests.channels.conftest import KEYS, PUBLIC_URL, messages, send_now
from tests.channels.test_twilio import (
    PHONE,
    SECRET,
    T0,
    enqueue_send,
    sms_customer,
    text_in,
    use_twilio,
)
from tests.channels.test_whatsapp import APP_SECRET, use_cloud_api
from tests.channels.test_whatsapp_interactive import quick_reply
from tests.conftest import Shop, make_shop
from tests.support.asgi import AsgiClient
from tests.support.twilio import TwilioApi
from tests.support.whatsapp import CloudApi

WA_FROM = PHONE.lstrip("+")


@pytest.fixture
def twilio() -> Iterator[TwilioApi]:
    """A running fake Twilio API on a free loopback port."""
    api = TwilioApi().start()
    yield api
    api.stop()


@pytest.fixture
def cloud_api() -> Iterator[CloudApi]:
    """A running fake WhatsApp Cloud API (only its settings are used: nothing is sent)."""
    api = CloudApi().start()
    yield api
    api.stop()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def app(database: Database, clock: VirtualClock) -> AsgiClient:
    """Jornada's app in process, reached as JORNADA_PUBLIC_URL."""
    settings = Settings(database_url=database.url, public_url=PUBLIC_URL, secret_key=SECRET)
    return AsgiClient(create_app(settings, database=database, clock=clock), base_url=PUBLIC_URL)


# -- helpers -------------------------------------------------------------------------------
def auth(shop: Shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {shop.keys.secret_key}"}


def whatsapp_in(
    app: AsgiClient, shop: Shop, at: datetime, wamid: str, content: dict[str, Any]
) -> httpx.Response:
    """Ana writes on WhatsApp: Meta posts the notification, signed with the app secret."""
    message = {"from": WA_FROM, "id": wamid, "timestamp": str(int(at.timestamp())), **content}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551130000000", "phone_number_id": "109876543210"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": WA_FROM}],
        "messages": [message],
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}],
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return app.post(
        f"/webhooks/whatsapp/{shop.ref.id}",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
    )


def text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body}}


def conversations(app: AsgiClient, shop: Shop, **query: Any) -> dict[str, Any]:
    answer = app.get("/api/v1/inbox/conversations", params=query, headers=auth(shop))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def conversation(app: AsgiClient, shop: Shop, conversation_id: str) -> dict[str, Any]:
    answer = app.get(f"/api/v1/inbox/conversations/{conversation_id}", headers=auth(shop))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def said(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """(direction, text) of each message of a conversation, in the order the API gives."""
    return [(m["direction"], m["text"]) for m in detail["messages"]]


def stored_count(database: Database, shop: Shop) -> int:
    with database.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ConversationMessage)
                .where(ConversationMessage.workspace_id == shop.ref.id)
            )
            or 0
        )


def replied_events(database: Database, shop: Shop) -> int:
    with database.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.workspace_id == shop.ref.id, Event.event == MESSAGE_REPLIED)
            )
            or 0
        )


# -- WhatsApp in ---------------------------------------------------------------------------
def test_a_whatsapp_text_and_a_button_reply_are_messages_of_one_conversation(
    database: Database, shop: Shop, app: AsgiClient, cloud_api: CloudApi
) -> None:
    """A stranger's text opens a WhatsApp conversation with the contact ingestion made for the
    number; her button reply joins it with the button's id and title; both are unread."""
    # given
    use_cloud_api(database, shop, cloud_api, T0, KEYS)
    # when
    first = whatsapp_in(app, shop, T0, "wamid.IN1", text("Oi, meu pedido não chegou"))
    second = whatsapp_in(
        app, shop, T0 + timedelta(minutes=2), "wamid.IN2", quick_reply("Falar com alguém", "humano")
    )
    # then
    assert (first.status_code, second.status_code) == (200, 200)
    page = conversations(app, shop)
    (listed,) = page["data"]
    assert page["next_cursor"] is None
    assert listed["channel"] == "whatsapp"
    assert listed["status"] == "open"
    assert listed["unread"] == 2
    assert listed["contact"]["phone"] == PHONE
    assert listed["last_message"] == {
        "direction": "inbound",
        "text": "Falar com alguém",
        "at": (T0 + timedelta(minutes=2)).isoformat(),
    }
    detail = conversation(app, shop, listed["id"])
    assert said(detail) == [
        ("inbound", "Oi, meu pedido não chegou"),
        ("inbound", "Falar com alguém"),
    ]
    button = detail["messages"][1]
    assert button["provider_message_id"] == "wamid.IN2"
    assert button["payload"] == {
        "type": "button",
        "reply_id": "humano",
        "reply_title": "Falar com alguém",
        "profile_name": "Ana",
    }
    assert replied_events(database, shop) == 2  # still Message Replied events, as before


@pytest.mark.parametrize(
    ("_case", "content", "shown", "media"),
    [
        (
            "a voice note",
            {"type": "audio", "audio": {"id": "MEDIA-77", "mime_type": "audio/ogg", "voice": True}},
            "[áudio]",
            {"id": "MEDIA-77", "mime_type": "audio/ogg", "voice": True},
        ),
        (
            "a photo with a caption",
            {"type": "image", "image": {"id": "MEDIA-78", "caption": "chegou assim"}},
            "[imagem] chegou assim",
            {"id": "MEDIA-78", "caption": "chegou assim"},
        ),
    ],
)
def test_media_shows_a_placeholder_and_keeps_the_media_fields(
    database: Database,
    shop: Shop,
    app: AsgiClient,
    cloud_api: CloudApi,
    _case: str,
    content: dict[str, Any],
    shown: str,
    media: dict[str, Any],
) -> None:
    """Media has no text: the agent reads a placeholder (and the caption), the media id stays
    in the payload for fetching the file later."""
    use_cloud_api(database, shop, cloud_api, T0, KEYS)
    assert whatsapp_in(app, shop, T0, "wamid.MEDIA", content).status_code == 200
    (listed,) = conversations(app, shop)["data"]
    (message,) = conversation(app, shop, listed["id"])["messages"]
    assert message["text"] == shown
    assert message["payload"]["media"] == media


def test_a_resent_whatsapp_notification_is_stored_once(
    database: Database, shop: Shop, app: AsgiClient, cloud_api: CloudApi
) -> None:
    """Meta retries a notification: one message, one unread, one event."""
    use_cloud_api(database, shop, cloud_api, T0, KEYS)
    for _ in range(2):
        assert whatsapp_in(app, shop, T0, "wamid.SAME", text("Oi")).status_code == 200
    (listed,) = conversations(app, shop)["data"]
    assert listed["unread"] == 1
    assert said(conversation(app, shop, listed["id"])) == [("inbound", "Oi")]
    assert stored_count(database, shop) == 1
    assert replied_events(database, shop) == 1


def test_a_bad_signature_stores_no_conversation_message(
    database: Database, shop: Shop, app: AsgiClient, cloud_api: CloudApi
) -> None:
    """A forged notification is a 401 and the inbox stays empty."""
    use_cloud_api(database, shop, cloud_api, T0, KEYS)
    answer = app.post(
        f"/webhooks/whatsapp/{shop.ref.id}",
        content=b'{"entry": []}',
        headers={"X-Hub-Signature-256": "sha256=" + "0" * 64},
    )
    assert answer.status_code == 401
    assert stored_count(database, shop) == 0
    assert conversations(app, shop, status="all")["data"] == []


# -- SMS in and out ------------------------------------------------------------------------
def test_every_inbound_sms_keywords_included_is_in_the_sms_conversation(
    database: Database, shop: Shop, app: AsgiClient, twilio: TwilioApi, clock: VirtualClock
) -> None:
    """A reply and then SAIR: both in Ana's SMS conversation, the STOP marked as a keyword;
    Twilio's resend of the reply is stored once."""
    # given
    use_twilio(database, shop, twilio, T0)
    contact_id = sms_customer(database, shop, T0)
    # when
    assert text_in(twilio, app, shop, "Quero fechar hoje", sid="SMin1").status_code == 200
    text_in(twilio, app, shop, "Quero fechar hoje", sid="SMin1")  # Twilio retries
    clock.set(T0 + timedelta(minutes=1))
    assert text_in(twilio, app, shop, "SAIR", sid="SMin2").text == "<Response/>"
    # then
    (listed,) = conversations(app, shop, channel="sms")["data"]
    assert (listed["contact"]["id"], listed["contact"]["name"]) == (contact_id, "Ana")
    assert listed["unread"] == 2
    detail = conversation(app, shop, listed["id"])
    assert said(detail) == [("inbound", "Quero fechar hoje"), ("inbound", "SAIR")]
    assert [m["provider_message_id"] for m in detail["messages"]] == ["SMin1", "SMin2"]
    assert detail["messages"][1]["payload"] == {"type": "text", "keyword": "stop"}
    assert conversations(app, shop, channel="whatsapp")["data"] == []


def test_a_stranger_sending_stop_has_a_conversation_the_agent_sees(
    database: Database, shop: Shop, app: AsgiClient, twilio: TwilioApi
) -> None:
    """No contact has the number: the STOP makes one, and its conversation holds the STOP."""
    use_twilio(database, shop, twilio, T0)
    assert text_in(twilio, app, shop, "PARAR", sid="SMstop").status_code == 200
    (listed,) = conversations(app, shop)["data"]
    assert listed["contact"]["phone"] == PHONE
    (message,) = conversation(app, shop, listed["id"])["messages"]
    assert (message["text"], message["payload"]["keyword"]) == ("PARAR", "stop")


def test_a_flows_sms_sent_while_open_and_the_one_answered_show_as_outbound(
    database: Database, shop: Shop, app: AsgiClient, twilio: TwilioApi, clock: VirtualClock
) -> None:
    """Our SMS at T0, Ana's answer at +3 min (the conversation opens), a flow's SMS at +10 min:
    the conversation reads in time order, our messages with their status; once it is closed,
    a later SMS of ours is not part of it."""
    # given
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0)
    send_now(database, T0)
    clock.set(T0 + timedelta(minutes=3))
    text_in(twilio, app, shop, "Pode mandar o link?", sid="SMin3")
    # when
    enqueue_send(database, shop, ana, T0 + timedelta(minutes=10))
    send_now(database, T0 + timedelta(minutes=10))
    # then
    first, second = messages(database, shop)
    (listed,) = conversations(app, shop)["data"]
    assert listed["last_message"]["direction"] == "outbound"
    assert listed["last_message"]["text"] == " ".join(second.body.split())[:120]
    detail = conversation(app, shop, listed["id"])
    assert [(m["direction"], m["message_id"]) for m in detail["messages"]] == [
        ("outbound", first.id),
        ("inbound", None),
        ("outbound", second.id),
    ]
    assert said(detail)[2] == ("outbound", second.body)
    assert [m["status"] for m in detail["messages"]] == ["replied", None, "sent"]
    assert detail["messages"][1]["payload"]["in_reply_to"] == first.id
    # and after closing, a later send stays out
    clock.set(T0 + timedelta(minutes=20))
    closed = app.post(f"/api/v1/inbox/conversations/{listed['id']}/close", headers=auth(shop))
    assert closed.status_code == 200
    enqueue_send(database, shop, ana, T0 + timedelta(minutes=30))
    send_now(database, T0 + timedelta(minutes=30))
    assert len(messages(database, shop)) == 3
    assert len(conversation(app, shop, listed["id"])["messages"]) == 3


# -- read, close, pages --------------------------------------------------------------------
def test_read_clears_unread_and_close_makes_the_next_message_open_a_new_conversation(
    database: Database, shop: Shop, app: AsgiClient, twilio: TwilioApi, clock: VirtualClock
) -> None:
    use_twilio(database, shop, twilio, T0)
    sms_customer(database, shop, T0)
    text_in(twilio, app, shop, "Oi", sid="SMa")
    (listed,) = conversations(app, shop)["data"]
    # when read
    read = app.post(f"/api/v1/inbox/conversations/{listed['id']}/read", headers=auth(shop))
    # then
    assert read.status_code == 200
    assert (read.json()["unread"], read.json()["status"]) == (0, "open")
    assert read.json()["contact"]["phone"] == PHONE
    # when closed
    clock.set(T0 + timedelta(hours=1))
    closed = app.post(f"/api/v1/inbox/conversations/{listed['id']}/close", headers=auth(shop))
    assert closed.status_code == 200
    assert (closed.json()["status"], closed.json()["closed_at"]) == (
        "closed",
        (T0 + timedelta(hours=1)).isoformat(),
    )
    assert conversations(app, shop)["data"] == []
    # Ana writes again: a new conversation, the closed one unchanged
    clock.set(T0 + timedelta(hours=2))
    text_in(twilio, app, shop, "Oi de novo", sid="SMb")
    (reopened,) = conversations(app, shop)["data"]
    assert reopened["id"] != listed["id"]
    assert (reopened["unread"], reopened["last_message"]["text"]) == (1, "Oi de novo")
    (old,) = conversations(app, shop, status="closed")["data"]
    assert old["id"] == listed["id"]
    assert said(conversation(app, shop, old["id"])) == [("inbound", "Oi")]


def test_conversations_come_newest_first_page_by_page(
    database: Database,
    shop: Shop,
    app: AsgiClient,
    twilio: TwilioApi,
    cloud_api: CloudApi,
    clock: VirtualClock,
) -> None:
    """Ana writes on SMS, then on WhatsApp: two conversations, WhatsApp first, one per page."""
    use_twilio(database, shop, twilio, T0)
    use_cloud_api(database, shop, cloud_api, T0, KEYS)
    sms_customer(database, shop, T0)
    text_in(twilio, app, shop, "por SMS", sid="SMc")
    whatsapp_in(app, shop, T0 + timedelta(minutes=5), "wamid.C", text("por WhatsApp"))
    first = conversations(app, shop, limit=1)
    assert [c["channel"] for c in first["data"]] == ["whatsapp"]
    second = conversations(app, shop, limit=1, cursor=first["next_cursor"])
    assert [c["channel"] for c in second["data"]] == ["sms"]
    assert second["next_cursor"] is None
    assert first["data"][0]["contact"]["id"] == second["data"][0]["contact"]["id"]


@pytest.mark.parametrize(
    ("_case", "query", "field"),
    [
        ("unknown status", {"status": "pending"}, "status"),
        ("a channel without conversations", {"channel": "email"}, "channel"),
        ("limit over the maximum", {"limit": 501}, "limit"),
        ("a made-up cursor", {"cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
    ],
)
def test_bad_list_parameters_name_the_field(
    app: AsgiClient, shop: Shop, _case: str, query: dict[str, Any], field: str
) -> None:
    answer = app.get("/api/v1/inbox/conversations", params=query, headers=auth(shop))
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid_input"
    assert answer.json()["field"] == field


# -- isolation -----------------------------------------------------------------------------
def test_another_workspace_sees_none_of_it_and_changes_nothing(
    database: Database, shop: Shop, app: AsgiClient, twilio: TwilioApi
) -> None:
    """Another shop's key: an empty list, and 404 naming the id for the conversation, its read
    and its close; the conversation stays open and unread."""
    use_twilio(database, shop, twilio, T0)
    sms_customer(database, shop, T0)
    text_in(twilio, app, shop, "Oi", sid="SMd")
    (listed,) = conversations(app, shop)["data"]
    other = make_shop(database)
    assert conversations(app, other, status="all")["data"] == []
    url = f"/api/v1/inbox/conversations/{listed['id']}"
    for answer in (
        app.get(url, headers=auth(other)),
        app.post(f"{url}/read", headers=auth(other)),
        app.post(f"{url}/close", headers=auth(other)),
    ):
        assert answer.status_code == 404
        assert (answer.json()["code"], answer.json()["field"]) == ("not_found", "id")
    (still,) = conversations(app, shop)["data"]
    assert (still["status"], still["unread"]) == ("open", 1)


def test_the_inbox_needs_the_secret_key(app: AsgiClient, shop: Shop) -> None:
    answer = app.get("/api/v1/inbox/conversations")
    assert answer.status_code == 401
    assert answer.json()["field"] == "authorization"
    wrong = app.get(
        "/api/v1/inbox/conversations", headers={"Authorization": f"Bearer {shop.keys.write_key}"}
    )
    assert wrong.status_code == 401


def test_the_package_exports_its_public_names() -> None:
    """Other packages import only these (the API does)."""
    import jornada.inbox

    assert sorted(jornada.inbox.__all__) == [
        "Conversation",
        "ConversationMessage",
        "close_conversation",
        "conversation_detail",
        "conversation_summary",
        "get_conversation",
        "list_conversations",
        "mark_read",
        "readable",
        "record_inbound",
    ]
