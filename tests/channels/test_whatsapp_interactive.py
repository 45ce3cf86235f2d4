"""WhatsApp beyond text: reply buttons, lists, audio and products, and the replies they bring.

Sends go through the real dispatch and delivery path to the local Cloud API contract server
(tests/support/whatsapp.py), which refuses what Meta refuses; replies come in signed through
a live server's webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from jornada.channels.catalog import library_templates, template_from_definition
from jornada.channels.email.compose import Outbound
from jornada.channels.providers import Keyring, set_provider
from jornada.channels.templates import TemplateError, render
from jornada.channels.whatsapp.send import WhatsAppCloudTransport
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.events import Event
from jornada.events.canonical import MESSAGE_REPLIED, SURVEY_ANSWERED
from jornada.flows import FlowRun, install, library_flows
from jornada.ingest import accept_messages
from jornada.outbox import OutboxItem, enqueue
from jornada.scheduler import tick
from jornada.workspaces import Workspace
from tests.channels.conftest import KEYS, courier, messages, send_now
from tests.channels.test_tracking import server_keys
from tests.conftest import Shop
from tests.support.server import LiveServer
from tests.support.whatsapp import CloudApi

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo
PHONE = "+5511987654321"
TO = "5511987654321"
APP_SECRET = "app-secret-for-tests"
CATALOG = "998877665544"

Live = tuple[LiveServer, Shop, Database]


@pytest.fixture(name="api")
def _api() -> Iterator[CloudApi]:
    """A running fake Cloud API on a free loopback port."""
    api = CloudApi().start()
    yield api
    api.stop()


# -- helpers -------------------------------------------------------------------------------
def use_cloud_api(
    database: Database, shop: Shop, api: CloudApi, at: datetime, keys: Keyring = KEYS
) -> None:
    """The shop sends WhatsApp through ``api``, with a catalog for product messages."""
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            "whatsapp",
            options={"phone_number_id": api.phone_number_id, "catalog_id": CATALOG},
            secrets={"access_token": api.token, "app_secret": APP_SECRET, "verify_token": "v"},
            base_url=api.url,
            now=at,
            keys=keys,
        )
        workspace = session.get(Workspace, shop.ref.id)
        assert workspace is not None
        workspace.url = "https://loja.test"


def ana(database: Database, shop: Shop, at: datetime, *events: dict[str, Any]) -> str:
    """Ana, with a phone and WhatsApp marketing consent since the day before; then ``events``."""
    calls = [
        {
            "type": "identify",
            "userId": "ana",
            "timestamp": (at - timedelta(days=1)).isoformat(),
            "traits": {
                "first_name": "Ana",
                "phone": PHONE,
                "consent": {"whatsapp_marketing": True},
            },
        },
        *({"type": "track", "userId": "ana", **e} for e in events),
    ]
    result = accept_messages(database, shop.ref, calls, received_at=at)
    assert result.rejected == []
    with database.read() as session:
        contact_id = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == "ana")
        )
    assert contact_id is not None
    return contact_id


def wrote(at: datetime) -> dict[str, Any]:
    """Ana wrote on WhatsApp at ``at``: her 24-hour window is open."""
    return {
        "event": MESSAGE_REPLIED,
        "timestamp": at.isoformat(),
        "properties": {"channel": "whatsapp", "text": "oi"},
    }


def send_template(
    database: Database, shop: Shop, contact_id: str, at: datetime, template: str, **extra: Any
) -> None:
    """What a flow's WhatsApp step leaves in the outbox (``extra``: a coupon…), sent at once."""
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=contact_id,
            kind="send",
            channel="whatsapp",
            idempotency_key=f"test:{template}:{at.isoformat()}",
            payload={"template": template, "purpose": "transactional", **extra},
            now=at,
        )
    send_now(database, at)


def envelope(kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": kind,
        kind: content,
    }


def post_signed(live: LiveServer, shop: Shop, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return httpx.post(
        f"{live.url}/webhooks/whatsapp/{shop.ref.id}",
        content=body,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"},
        timeout=10,
    )


def tapped(at: datetime, wamid: str, quoted: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A notification: Ana tapped something on our message ``quoted``."""
    message = {
        "from": TO,
        "id": wamid,
        "timestamp": str(int(at.timestamp())),
        "context": {"from": "551130000000", "id": quoted},
        **reply,
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551130000000", "phone_number_id": "109876543210"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": TO}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA-1", "changes": [{"field": "messages", "value": value}]}],
    }


def quick_reply(text: str, payload: str) -> dict[str, Any]:
    return {"type": "button", "button": {"text": text, "payload": payload}}


def interactive(kind: str, reply_id: str, title: str) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {"type": kind, kind: {"id": reply_id, "title": title}},
    }


def events(database: Database, shop: Shop, name: str) -> list[dict[str, Any]]:
    with database.read() as session:
        return [
            dict(e.properties or {})
            for e in session.scalars(
                select(Event)
                .where(Event.workspace_id == shop.ref.id, Event.event == name)
                .order_by(Event.timestamp, Event.id)
            )
        ]


# -- sending -------------------------------------------------------------------------------
def test_reply_buttons_go_as_an_interactive_button_message(
    database: Database, shop: Shop, api: CloudApi
) -> None:
    """Inside the window, a template's buttons are Meta's reply buttons: id and title each."""
    # given
    use_cloud_api(database, shop, api, T0)
    contact = ana(database, shop, T0, wrote(T0 - timedelta(hours=1)))
    # when
    send_template(database, shop, contact, T0, "nps-score-7-8")
    # then
    (request,) = api.received
    assert request.body == envelope(
        "interactive",
        {
            "type": "button",
            "body": {"text": "Obrigado pela resposta! Qual é a sua nota?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "nps-7", "title": "7"}},
                    {"type": "reply", "reply": {"id": "nps-8", "title": "8"}},
                ]
            },
        },
    )
    (message,) = messages(database, shop)
    assert (message.status, message.provider_message_id) == ("sent", "wamid.TEST000001")


def test_a_list_goes_with_its_button_sections_and_rows(
    database: Database, shop: Shop, api: CloudApi
) -> None:
    """Meta's list message: the label of the button that opens it, sections of rows."""
    use_cloud_api(database, shop, api, T0)
    contact = ana(database, shop, T0, wrote(T0 - timedelta(hours=1)))
    send_template(database, shop, contact, T0, "nps-score-0-6")
    (request,) = api.received
    rows = [{"id": "nps-0", "title": "0", "description": "Nada provável"}]
    rows += [{"id": f"nps-{n}", "title": str(n)} for n in range(1, 7)]
    assert request.body == envelope(
        "interactive",
        {
            "type": "list",
            "body": {"text": "Obrigado pela resposta! Qual é a sua nota, de 0 a 6?"},
            "action": {
                "button": "Escolher a nota",
                "sections": [{"title": "Sua nota", "rows": rows}],
            },
        },
    )


def test_an_approved_template_with_buttons_goes_with_its_quick_replies(
    database: Database, shop: Shop, api: CloudApi
) -> None:
    """Outside the window: the registered template, each button's id as its quick reply payload."""
    use_cloud_api(database, shop, api, T0)
    contact = ana(database, shop, T0)  # she never wrote
    send_template(database, shop, contact, T0, "hot-lead-whatsapp")
    (request,) = api.received
    assert request.body["type"] == "template"
    assert request.body["template"]["name"] == "hot_lead_whatsapp"
    body, first, second = request.body["template"]["components"]
    assert body["type"] == "body"
    assert [first, second] == [
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": str(index),
            "parameters": [{"type": "payload", "payload": payload}],
        }
        for index, payload in enumerate(["orcamento", "consultor"])
    ]


@pytest.mark.parametrize(
    ("_case", "window_open", "sent"),
    [
        ("she wrote an hour ago", True, ["audio"]),
        ("Meta says the window is closed", False, ["template"]),
    ],
)
def test_the_voice_note_goes_as_audio_inside_the_window_else_as_its_template(
    database: Database, shop: Shop, api: CloudApi, _case: str, window_open: bool, sent: list[str]
) -> None:
    """Flow 4's voice note is the audio file the template names; outside the 24-hour window
    Meta refuses audio (131047) and the registered text template goes instead."""
    use_cloud_api(database, shop, api, T0)
    contact = ana(database, shop, T0, *([wrote(T0 - timedelta(hours=1))] if window_open else []))
    if not window_open:
        api.window_closed.add(TO)
    send_template(
        database, shop, contact, T0, "reactivation-voice-note", coupon={"code": "VIP-123"}
    )
    assert [r.body["type"] for r in api.received] == sent
    if window_open:
        (request,) = api.received
        assert request.body == envelope("audio", {"link": "https://loja.test/audio/reativacao.ogg"})
        assert api.refused == []
    else:
        (refused,) = api.refused
        assert refused == envelope("audio", {"link": "https://loja.test/audio/reativacao.ogg"})
        (request,) = api.received
        assert request.body["template"]["name"] == "reactivation_voice_note"
        (body,) = request.body["template"]["components"]
        assert body["parameters"][-1] == {"type": "text", "text": "VIP-123"}
    (message,) = messages(database, shop)
    assert (message.status, message.provider_message_id) == ("sent", "wamid.TEST000001")


def test_the_product_she_viewed_goes_as_a_single_product_message(
    database: Database, shop: Shop, api: CloudApi
) -> None:
    """The product comes from her last view; the catalog from the provider's settings."""
    use_cloud_api(database, shop, api, T0)
    viewed = {
        "event": "Product Viewed",
        "timestamp": (T0 - timedelta(hours=2)).isoformat(),
        "properties": {"product_id": "SKU-42", "name": "Tênis Corrida", "price": "199.90"},
    }
    contact = ana(database, shop, T0, viewed, wrote(T0 - timedelta(hours=1)))
    send_template(database, shop, contact, T0, "browse-abandonment-whatsapp")
    (request,) = api.received
    assert request.body == envelope(
        "interactive",
        {
            "type": "product",
            "body": {"text": "Ana, ainda pensando no Tênis Corrida? Ele está aqui:"},
            "footer": {"text": shop.ref.name},
            "action": {"catalog_id": CATALOG, "product_retailer_id": "SKU-42"},
        },
    )


def test_recommendations_go_as_a_product_list(api: CloudApi) -> None:
    """Each product-list entry renders to retailer ids (commas allowed); the header is required."""
    # given the library's kit template rendered with two recommendations
    template = library_templates()["upsell-kits-whatsapp"]
    recommended = [
        {"product_id": "KIT-1", "name": "Kit 1"},
        {"product_id": "KIT-2", "name": "Kit 2"},
    ]
    rendered = render(template, {"recommended": recommended, "shop": {"name": "Loja"}})
    assert rendered.whatsapp is not None
    message = Outbound(
        id=1,
        workspace_id="w",
        contact_id="c",
        channel="whatsapp",
        purpose="marketing",
        template=template.id,
        to=PHONE,
        subject=None,
        body=rendered.body,
        text=orjson.dumps(rendered.whatsapp).decode(),
        locale=None,
    )
    transport = WhatsAppCloudTransport(
        {"phone_number_id": api.phone_number_id, "catalog_id": CATALOG},
        {"access_token": api.token},
        base_url=api.url,
    )
    # when
    try:
        wamid = transport.send(message, T0)
    finally:
        transport.close()
    # then
    assert wamid == "wamid.TEST000001"
    (request,) = api.received
    assert request.body == envelope(
        "interactive",
        {
            "type": "product_list",
            "header": {"type": "text", "text": "Combina com sua compra"},
            "body": {"text": rendered.body.strip()},
            "action": {
                "catalog_id": CATALOG,
                "sections": [
                    {
                        "title": "Comprados juntos",
                        "product_items": [
                            {"product_retailer_id": "KIT-1"},
                            {"product_retailer_id": "KIT-2"},
                        ],
                    }
                ],
            },
        },
    )


def test_no_recommendation_leaves_the_product_list_out() -> None:
    """Nothing to show: the parts render to None and the message goes as its text."""
    template = library_templates()["upsell-kits-whatsapp"]
    rendered = render(template, {"recommended": [], "shop": {"name": "Loja"}})
    assert rendered.whatsapp is None
    assert rendered.body.startswith("Separamos produtos")


# -- what the contract server refuses, as Meta does -----------------------------------------
def _buttons(*titles: str) -> dict[str, Any]:
    return {
        "type": "button",
        "body": {"text": "Escolha"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": f"b{i}", "title": t}}
                for i, t in enumerate(titles)
            ]
        },
    }


def _rows(count: int) -> dict[str, Any]:
    return {
        "type": "list",
        "body": {"text": "Escolha"},
        "action": {
            "button": "Ver",
            "sections": [{"rows": [{"id": f"r{i}", "title": str(i)} for i in range(count)]}],
        },
    }


@pytest.mark.parametrize(
    ("_case", "content", "details"),
    [
        ("a 4th button", _buttons("a", "b", "c", "d"), "buttons count invalid. Min: 1, Max: 3"),
        (
            "a title of 21 characters",
            _buttons("x" * 21),
            "Button title length invalid. Min length: 1, Max length: 20",
        ),
        ("the same title twice", _buttons("a", "a"), "Button ids and titles must be unique"),
        ("11 list rows", _rows(11), "Total row count exceed max allowed count: 10"),
        (
            "a product list without header",
            {
                "type": "product_list",
                "body": {"text": "Veja"},
                "action": {
                    "catalog_id": CATALOG,
                    "sections": [
                        {"title": "Kits", "product_items": [{"product_retailer_id": "K"}]}
                    ],
                },
            },
            "header is required",
        ),
    ],
)
def test_the_contract_server_refuses_what_meta_refuses(
    api: CloudApi, _case: str, content: dict[str, Any], details: str
) -> None:
    answer = httpx.post(
        f"{api.url}/v21.0/{api.phone_number_id}/messages",
        json=envelope("interactive", content),
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["code"], error["error_data"]["details"]) == (131009, details)
    assert api.received == []


def test_the_contract_server_takes_three_buttons_and_ten_rows(api: CloudApi) -> None:
    """The limits themselves are allowed."""
    for content in (_buttons("a", "b", "c" * 20), _rows(10)):
        answer = httpx.post(
            f"{api.url}/v21.0/{api.phone_number_id}/messages",
            json=envelope("interactive", content),
            headers={"Authorization": f"Bearer {api.token}"},
        )
        assert answer.status_code == 200, answer.text
    assert len(api.received) == 2


# -- template definitions ------------------------------------------------------------------
def _button(i: int, title: str | None = None) -> dict[str, str]:
    return {"id": f"b{i}", "title": title or f"Opção {i}"}


def _list_of(*counts: int, titled: bool = True) -> dict[str, Any]:
    return {
        "button": "Ver opções",
        "sections": [
            {
                **({"title": f"Seção {s}"} if titled else {}),
                "rows": [{"id": f"s{s}r{i}", "title": f"Linha {i}"} for i in range(count)],
            }
            for s, count in enumerate(counts)
        ],
    }


@pytest.mark.parametrize(
    ("_case", "definition", "field"),
    [
        ("a 4th button", {"buttons": [_button(i) for i in range(4)]}, "buttons[3]"),
        (
            "a title over 20",
            {"buttons": [_button(0, "Quero um orçamento já!")]},
            "buttons[0].title",
        ),
        ("a button without id", {"buttons": [{"title": "Sim"}]}, "buttons[0].id"),
        (
            "the same id twice",
            {"buttons": [_button(0), {"id": "b0", "title": "Outra"}]},
            "buttons[1].id",
        ),
        ("11 rows in two sections", {"list": _list_of(6, 5)}, "list.sections[1].rows[4]"),
        (
            "two sections, one untitled",
            {"list": _list_of(2, 2, titled=False)},
            "list.sections[0].title",
        ),
        (
            "a row title over 24",
            {"list": {"button": "Ver", "sections": [{"rows": [{"id": "r", "title": "x" * 25}]}]}},
            "list.sections[0].rows[0].title",
        ),
        ("a list button over 20", {"list": {**_list_of(1), "button": "y" * 21}}, "list.button"),
        ("audio with link and id", {"audio": {"link": "https://x/a.ogg", "id": "123"}}, "audio"),
        ("buttons and a list", {"buttons": [_button(0)], "list": _list_of(1)}, "list"),
        (
            "a product without retailer id",
            {"product": {"catalog_id": "1"}},
            "product.product_retailer_id",
        ),
        (
            "a product list without header",
            {"product_list": {"sections": [{"title": "Kits", "products": ["K1"]}]}},
            "header",
        ),
        (
            "31 products",
            {
                "header": "Kits",
                "product_list": {
                    "sections": [{"title": "Kits", "products": [f"K{i}" for i in range(31)]}]
                },
            },
            "product_list.sections[0].products",
        ),
        ("a footer over 60", {"buttons": [_button(0)], "footer": "z" * 61}, "footer"),
        ("an unknown key", {"buttons": [_button(0)], "colour": "red"}, "colour"),
        ("buttons on e-mail", {"channel": "email", "buttons": [_button(0)]}, "buttons"),
    ],
)
def test_bad_template_definitions_name_the_field(
    _case: str, definition: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as error:
        template_from_definition("t", {"channel": "whatsapp", "body": "Oi", **definition})
    assert error.value.field == field


def test_a_rendering_over_a_limit_fails_naming_the_field() -> None:
    """A title written with Jinja is checked once rendered: never a request Meta would refuse."""
    template = template_from_definition(
        "t",
        {
            "channel": "whatsapp",
            "body": "Oi",
            "buttons": [{"id": "sim", "title": "{{ contact.traits.first_name }}"}],
        },
    )
    ok = render(template, {"contact": {"traits": {"first_name": "Ana"}}})
    assert ok.whatsapp == {"kind": "buttons", "buttons": [{"id": "sim", "title": "Ana"}]}
    with pytest.raises(TemplateError) as error:
        render(template, {"contact": {"traits": {"first_name": "Maria Aparecida da Silva"}}})
    assert error.value.field == "buttons[0].title"


# -- replies -------------------------------------------------------------------------------
def test_a_button_reply_is_a_reply_with_its_id_and_ends_the_run(
    server_shop: Live, api: CloudApi
) -> None:
    """Ana taps a quick reply on the cart template: Message Replied with the id and title;
    the cart run (exit on reply) ends and the message is marked replied."""
    live, shop, database = server_shop
    keys = server_keys(live)
    cart = next(f for f in library_flows() if f.key == "cart-abandonment")
    with database.write() as session:
        install(session, shop.ref.id, cart, now=T0)
    use_cloud_api(database, shop, api, T0, keys)
    started = {
        "event": "Checkout Started",
        "timestamp": T0.isoformat(),
        "properties": {"checkout_url": "https://loja.test/c/1", "value": "39.90"},
    }
    contact = ana(database, shop, T0, started)
    tick(database, T0 + timedelta(hours=1), courier=courier(keys, live.url))
    (request,) = api.received
    assert request.body["template"]["name"] == "cart_abandonment_whatsapp"
    # when
    at = T0 + timedelta(hours=1, minutes=5)
    answer = post_signed(
        live, shop, tapped(at, "wamid.IN1", "wamid.TEST000001", quick_reply("Quero ajuda", "ajuda"))
    )
    assert answer.status_code == 200
    assert answer.json() == {"messages": 1, "statuses": 0, "held": 0}
    tick(database, at + timedelta(minutes=1), courier=courier(keys, live.url))
    # then
    whatsapp = next(m for m in messages(database, shop) if m.channel == "whatsapp")
    (reply,) = events(database, shop, MESSAGE_REPLIED)
    assert reply == {
        "channel": "whatsapp",
        "text": "Quero ajuda",
        "type": "button",
        "whatsapp_message_id": "wamid.IN1",
        "button_payload": "ajuda",
        "reply_id": "ajuda",
        "reply_title": "Quero ajuda",
        "message_id": whatsapp.id,
        "template": "cart-abandonment-whatsapp",
        "run_id": whatsapp.run_id,
    }
    with database.read() as session:
        (run,) = session.scalars(select(FlowRun).where(FlowRun.contact_id == contact))
    assert run.status == "exited"
    assert (whatsapp.status, whatsapp.replied_at) == ("replied", at)
    assert events(database, shop, SURVEY_ANSWERED) == []


def nps_question(live: LiveServer, shop: Shop, database: Database, api: CloudApi) -> str:
    """The NPS flow's question, three days after delivery; returns Ana's contact id."""
    keys = server_keys(live)
    nps = next(f for f in library_flows() if f.key == "nps-after-delivery")
    with database.write() as session:
        install(session, shop.ref.id, nps, now=T0)
    use_cloud_api(database, shop, api, T0, keys)
    delivered = {
        "event": "Order Delivered",
        "timestamp": T0.isoformat(),
        "properties": {"order_id": "o1"},
    }
    contact = ana(database, shop, T0, delivered)
    tick(database, T0, courier=courier(keys, live.url))
    tick(database, T0 + timedelta(days=3), courier=courier(keys, live.url))
    (question,) = api.received
    assert question.body["template"]["name"] == "nps_survey"
    return contact


def test_nps_two_taps_record_the_score_and_the_promoter_branch_runs(
    server_shop: Live, api: CloudApi
) -> None:
    """ "9 ou 10" on the question brings buttons 9 and 10; "10" is Survey Answered with score 10,
    and the flow, still running after the first tap, asks the promoter for a review."""
    live, shop, database = server_shop
    keys = server_keys(live)
    contact = nps_question(live, shop, database, api)
    first = T0 + timedelta(days=3, minutes=5)
    # when Ana taps the range
    assert (
        post_signed(
            live,
            shop,
            tapped(first, "wamid.IN1", "wamid.TEST000001", quick_reply("9 ou 10", "nps-9-10")),
        ).status_code
        == 200
    )
    tick(database, first + timedelta(minutes=1), courier=courier(keys, live.url))
    # then the exact score is asked, as reply buttons, in the window the tap opened
    follow_up = api.received[1].body
    assert follow_up == envelope(
        "interactive",
        {
            "type": "button",
            "body": {"text": "Que bom! Qual é a sua nota?"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "nps-9", "title": "9"}},
                    {"type": "reply", "reply": {"id": "nps-10", "title": "10"}},
                ]
            },
        },
    )
    assert events(database, shop, SURVEY_ANSWERED) == []
    # when she taps 10
    second = first + timedelta(minutes=3)
    reply = interactive("button_reply", "nps-10", "10")
    assert (
        post_signed(live, shop, tapped(second, "wamid.IN2", "wamid.TEST000002", reply)).status_code
        == 200
    )
    tick(database, second + timedelta(minutes=1), courier=courier(keys, live.url))
    # then
    follow_up_message = next(m for m in messages(database, shop) if m.template == "nps-score-9-10")
    assert events(database, shop, SURVEY_ANSWERED) == [
        {
            "kind": "nps",
            "score": 10,
            "channel": "whatsapp",
            "message_id": follow_up_message.id,
            "template": "nps-score-9-10",
        }
    ]
    replied = events(database, shop, MESSAGE_REPLIED)
    assert [(r["reply_id"], r["reply_title"]) for r in replied] == [
        ("nps-9-10", "9 ou 10"),
        ("nps-10", "10"),
    ]
    # the flow, still running after the first tap, took the promoter branch at once
    with database.read() as session:
        (run,) = session.scalars(select(FlowRun).where(FlowRun.contact_id == contact))
    assert run.status == "completed"
    assert after_the_answer(database, shop) == [
        ("send", "nps-referral-invite"),
        ("send", "nps-review-request"),
    ]


def after_the_answer(database: Database, shop: Shop) -> list[tuple[str, str | None]]:
    """What the flow queued once answered (pending: due at the server's own clock)."""
    with database.read() as session:
        return [
            (i.kind, i.payload.get("template"))
            for i in session.scalars(
                select(OutboxItem)
                .where(OutboxItem.workspace_id == shop.ref.id, OutboxItem.status == "pending")
                .order_by(OutboxItem.id)
            )
        ]


def test_an_nps_list_reply_records_the_score_and_a_detractor_gets_a_task(
    server_shop: Live, api: CloudApi
) -> None:
    """ "0 a 6" brings the list of 0 to 6; row 3 is Survey Answered with score 3: the
    detractor branch (a ticket and a support task)."""
    live, shop, database = server_shop
    keys = server_keys(live)
    contact = nps_question(live, shop, database, api)
    first = T0 + timedelta(days=3, minutes=5)
    post_signed(
        live, shop, tapped(first, "wamid.IN1", "wamid.TEST000001", quick_reply("0 a 6", "nps-0-6"))
    )
    # Meta retries the same notification: still one follow-up
    post_signed(
        live, shop, tapped(first, "wamid.IN1", "wamid.TEST000001", quick_reply("0 a 6", "nps-0-6"))
    )
    tick(database, first + timedelta(minutes=1), courier=courier(keys, live.url))
    (_question, follow_up) = api.received
    assert follow_up.body["interactive"]["type"] == "list"
    assert [r["id"] for r in follow_up.body["interactive"]["action"]["sections"][0]["rows"]] == [
        f"nps-{n}" for n in range(7)
    ]
    # when she picks 3
    second = first + timedelta(minutes=2)
    reply = interactive("list_reply", "nps-3", "3")
    post_signed(live, shop, tapped(second, "wamid.IN2", "wamid.TEST000002", reply))
    tick(database, second + timedelta(minutes=1), courier=courier(keys, live.url))
    # then
    (answer,) = events(database, shop, SURVEY_ANSWERED)
    assert (answer["kind"], answer["score"], answer["template"]) == ("nps", 3, "nps-score-0-6")
    # the detractor branch: the inbox ticket and the support task, no review request
    assert after_the_answer(database, shop) == [("notify", None), ("task", None)]
    with database.read() as session:
        (run,) = session.scalars(select(FlowRun).where(FlowRun.contact_id == contact))
    assert run.status == "completed"
    assert len(api.received) == 2
