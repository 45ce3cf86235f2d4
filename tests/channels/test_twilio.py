"""SMS and voice through a local Twilio contract server; Twilio's signed callbacks through the app."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from jornada.api.app import create_app
from jornada.channels.history import suppress
from jornada.channels.models import Message, StoredTemplate, Suppression
from jornada.channels.providers import set_provider
from jornada.clock import VirtualClock
from jornada.config import Settings
from jornada.contacts import ConsentRecord, Contact
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.events import Event
from jornada.events.canonical import MESSAGE_REPLIED, UNSUBSCRIBED
from jornada.flows import FlowRun, install, library_flows
from jornada.ingest import accept_messages
from jornada.outbox import OutboxItem, enqueue
from jornada.scheduler import dispatch_due, tick
from jornada.workspaces import Workspace
from tests.channels.conftest import KEYS, PUBLIC_URL, SHOP_URL, courier, messages, outbox, send_now
from tests.channels.test_tracking import server_keys
from tests.conftest import Shop
from tests.support.asgi import AsgiClient
from tests.support.server import LiveServer
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, Request, TwilioApi
from tests.test_cli import jornada

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo
PHONE = "+5511987654321"
SENDER = "+551130000000"
SERVICE_SID = "MG" + "abcdef0123456789" * 2
SECRET = "a-test-secret-that-is-long-enough"  # the one behind tests.channels.conftest.KEYS


@pytest.fixture
def twilio() -> Iterator[TwilioApi]:
    """A running fake Twilio API on a free loopback port."""
    api = TwilioApi().start()
    yield api
    api.stop()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def app(database: Database, clock: VirtualClock) -> AsgiClient:
    """Jornada's app in process, reached as JORNADA_PUBLIC_URL (what Twilio is given)."""
    settings = Settings(database_url=database.url, public_url=PUBLIC_URL, secret_key=SECRET)
    return AsgiClient(create_app(settings, database=database, clock=clock), base_url=PUBLIC_URL)


def use_twilio(
    database: Database,
    shop: Shop,
    api: TwilioApi,
    at: datetime,
    channel: str = "sms",
    **options: str,
) -> None:
    """Point the shop's ``channel`` at the fake Twilio, sending from SENDER unless told."""
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            channel,
            options={"account_sid": api.account_sid, **(options or {"from": SENDER})},
            secrets={"auth_token": api.auth_token},
            base_url=api.url,
            now=at,
            keys=KEYS,
        )
        workspace = session.get(Workspace, shop.ref.id)
        assert workspace is not None
        workspace.url = SHOP_URL


def sms_customer(database: Database, shop: Shop, at: datetime) -> str:
    """Ana, with a phone and SMS marketing consent since the day before ``at``."""
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
                    "consent": {"sms_marketing": True},
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


def enqueue_send(
    database: Database,
    shop: Shop,
    contact_id: str,
    at: datetime,
    *,
    channel: str = "sms",
    template: str = "proposal-urgency-sms",
    purpose: str = "transactional",
    trigger: dict[str, Any] | None = None,
) -> None:
    """What a flow's SMS or voice step leaves in the outbox."""
    payload: dict[str, Any] = {"template": template, "purpose": purpose}
    if trigger is not None:
        payload["trigger"] = trigger
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=contact_id,
            kind="send",
            channel=channel,
            idempotency_key=f"test:{contact_id}:{channel}:{template}:{at.isoformat()}",
            payload=payload,
            now=at,
        )


def own_voice_text(database: Database, shop: Shop, body: str) -> None:
    """The workspace rewrote the boleto call's text."""
    with database.write() as session:
        session.add(
            StoredTemplate(
                workspace_id=shop.ref.id,
                template_id="boleto-due-call",
                channel="voice",
                subject=None,
                body=body,
                updated_at=T0,
            )
        )


def hook(shop: Shop, endpoint: str) -> str:
    """The URL given to Twilio for ``endpoint`` (``status`` or ``sms``)."""
    return f"{PUBLIC_URL}/webhooks/twilio/{shop.ref.id}/{endpoint}"


def text_in(
    api: TwilioApi, app: AsgiClient, shop: Shop, text: str, sid: str = "SMin0001"
) -> httpx.Response:
    """Ana texts the shop's number; Twilio posts it, signed, to the messaging webhook."""
    return api.post_signed(app, hook(shop, "sms"), api.inbound_params(PHONE, SENDER, text, sid))


def events_named(database: Database, shop: Shop, name: str) -> list[tuple[str, dict[str, Any]]]:
    with database.read() as session:
        return [
            (e.contact_id, dict(e.properties or {}))
            for e in session.scalars(
                select(Event).where(Event.workspace_id == shop.ref.id, Event.event == name)
            )
        ]


def suppressions(database: Database, shop: Shop) -> list[tuple[str, str, str]]:
    with database.read() as session:
        return [
            (s.channel, s.address, s.reason)
            for s in session.scalars(
                select(Suppression)
                .where(Suppression.workspace_id == shop.ref.id)
                .order_by(Suppression.channel)
            )
        ]


def consent_history(database: Database, contact_id: str) -> list[tuple[str, bool, str]]:
    with database.read() as session:
        return [
            (f"{r.channel}_{r.purpose}", r.granted, r.source)
            for r in session.scalars(
                select(ConsentRecord)
                .where(ConsentRecord.contact_id == contact_id)
                .order_by(ConsentRecord.id)
            )
        ]


def sent_sms(database: Database, shop: Shop, api: TwilioApi) -> tuple[Message, Request]:
    """Ana's one transactional SMS, sent through the fake at T0."""
    use_twilio(database, shop, api, T0)
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0)
    send_now(database, T0)
    (message,) = messages(database, shop)
    (request,) = api.received
    return message, request


# -- settings ------------------------------------------------------------------------------
GOOD = {"account_sid": ACCOUNT_SID, "from": SENDER}


@pytest.mark.parametrize(
    ("_case", "options", "secrets", "field"),
    [
        ("no account", {"from": SENDER}, {"auth_token": AUTH_TOKEN}, "options.account_sid"),
        (
            "account not AC + 32 hex",
            {**GOOD, "account_sid": "AC123"},
            {"auth_token": AUTH_TOKEN},
            "options.account_sid",
        ),
        ("no sender", {"account_sid": ACCOUNT_SID}, {"auth_token": AUTH_TOKEN}, "options.from"),
        (
            "from without country code",
            {**GOOD, "from": "11987654321"},
            {"auth_token": AUTH_TOKEN},
            "options.from",
        ),
        (
            "from not a number",
            {**GOOD, "from": "+5511"},
            {"auth_token": AUTH_TOKEN},
            "options.from",
        ),
        (
            "bad messaging service",
            {**GOOD, "messaging_service_sid": "MG1"},
            {"auth_token": AUTH_TOKEN},
            "options.messaging_service_sid",
        ),
        (
            "bad language",
            {**GOOD, "language": "pt_BR"},
            {"auth_token": AUTH_TOKEN},
            "options.language",
        ),
        ("unknown option", {**GOOD, "colour": "red"}, {"auth_token": AUTH_TOKEN}, "options.colour"),
        ("no token", GOOD, {}, "secrets.auth_token"),
        ("token not 32 hex", GOOD, {"auth_token": "secret"}, "secrets.auth_token"),
    ],
)
def test_bad_twilio_settings_name_the_field(
    database: Database,
    shop: Shop,
    _case: str,
    options: dict[str, Any],
    secrets: dict[str, str | None],
    field: str,
) -> None:
    """A wrong setting is refused with the field it is about, named in the message too."""
    with database.write() as session, pytest.raises(InvalidInput) as error:
        set_provider(
            session, shop.ref.id, "sms", options=options, secrets=secrets, now=T0, keys=KEYS
        )
    assert error.value.field == field
    assert field.split(".")[-1] in error.value.message


def test_cli_sets_sms_and_voice_without_printing_the_token(tmp_path: Path) -> None:
    """`channels set sms|voice` store the twilio provider and print the callback URLs."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    common = ["--workspace", "loja", "--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN]
    sms = jornada(url, "channels", "set", "sms", *common, "--from", "+55 11 3000-0000")
    assert sms.returncode == 0, sms.stderr
    voice = jornada(
        url, "channels", "set", "voice", *common, "--from", SENDER, "--voice", "Polly.Camila"
    )
    assert voice.returncode == 0, voice.stderr
    output = sms.stdout + sms.stderr + voice.stdout + voice.stderr
    assert AUTH_TOKEN not in output
    assert "sms: from +551130000000 (account AC0123…cdef, calls in pt-BR), token ****" in output
    assert "/webhooks/twilio/" in output
    assert output.count("/status") == 2
    assert output.count("/sms") == 1
    views = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    by_channel = {v["channel"]: v for v in views}
    assert by_channel["sms"]["provider"] == by_channel["voice"]["provider"] == "twilio"
    assert by_channel["sms"]["options"] == {
        "account_sid": ACCOUNT_SID,
        "from": SENDER,
        "language": "pt-BR",
    }
    assert by_channel["voice"]["options"]["voice"] == "Polly.Camila"
    assert by_channel["sms"]["secrets"] == {"auth_token": "********"}
    # a wrong number names the option; nothing changes
    bad = jornada(url, "channels", "set", "sms", *common[:4], "--from", "3000-0000")
    assert bad.returncode != 0
    assert "options.from" in bad.stdout + bad.stderr
    # the token is kept when left out
    again = jornada(
        url, "channels", "set", "sms", *common[:4], "--messaging-service-sid", SERVICE_SID
    )
    assert again.returncode == 0, again.stderr
    # voice needs a calling number
    assert jornada(url, "channels", "set", "voice", *common).returncode != 0


def test_admin_api_sets_twilio_for_sms_and_names_a_bad_field(app: AsgiClient, shop: Shop) -> None:
    """PUT /api/v1/channels/sms: twilio by default for sms, the token write-only."""
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    body = {"options": GOOD, "secrets": {"auth_token": AUTH_TOKEN}}
    answer = app.put("/api/v1/channels/sms", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert (view["provider"], view["secrets"]) == ("twilio", {"auth_token": "********"})
    assert AUTH_TOKEN not in answer.text
    bad = app.put(
        "/api/v1/channels/voice",
        json={"options": {**GOOD, "from": "not a phone"}, "secrets": {"auth_token": AUTH_TOKEN}},
        headers=headers,
    )
    assert bad.status_code == 400
    assert bad.json()["field"] == "options.from"
    (listed,) = app.get("/api/v1/channels", headers=headers).json()["data"]
    assert listed["channel"] == "sms"


# -- sending -------------------------------------------------------------------------------
def test_sms_reaches_twilio_with_the_form_auth_and_status_callback(
    database: Database, shop: Shop, twilio: TwilioApi
) -> None:
    """Messages.json gets To, From, Body and StatusCallback, Basic auth with SID and token."""
    # given / when
    message, request = sent_sms(database, shop, twilio)
    # then
    assert (request.resource, request.user, request.password) == (
        "Messages",
        ACCOUNT_SID,
        AUTH_TOKEN,
    )
    assert request.form == {
        "To": PHONE,
        "From": SENDER,
        "Body": (
            f"{shop.ref.name}: sua proposta tem condição especial válida até hoje 23h55."
            f" Fale com a gente: {SHOP_URL}/proposta"
        ),
        "StatusCallback": f"{PUBLIC_URL}/webhooks/twilio/{shop.ref.id}/status?m={message.id}",
    }
    assert (message.status, message.provider, message.sent_at) == ("sent", "twilio", T0)
    assert message.provider_message_id == request.sid
    assert request.sid.startswith("SM")


def test_a_messaging_service_sends_instead_of_a_number(
    database: Database, shop: Shop, twilio: TwilioApi
) -> None:
    """With a messaging service, MessagingServiceSid goes instead of From."""
    use_twilio(database, shop, twilio, T0, messaging_service_sid=SERVICE_SID)
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0)
    send_now(database, T0)
    (request,) = twilio.received
    assert request.form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in request.form


def test_a_voice_message_is_a_call_that_says_the_text_in_portuguese(
    database: Database, shop: Shop, twilio: TwilioApi
) -> None:
    """Calls.json with the TwiML inline: <Say language="pt-BR">, the text XML-escaped."""
    use_twilio(database, shop, twilio, T0, channel="voice", **{"from": SENDER})
    ana = sms_customer(database, shop, T0)
    own_voice_text(database, shop, "Olá, aqui é da {{ shop.name }} & cia: boleto <vence> hoje.")
    enqueue_send(database, shop, ana, T0, channel="voice", template="boleto-due-call")
    send_now(database, T0)
    (request,) = twilio.received
    assert (request.resource, request.user, request.password) == ("Calls", ACCOUNT_SID, AUTH_TOKEN)
    assert request.form == {
        "To": PHONE,
        "From": SENDER,
        "Twiml": (
            '<Response><Say language="pt-BR">'
            f"Olá, aqui é da {shop.ref.name} &amp; cia: boleto &lt;vence&gt; hoje."
            "</Say></Response>"
        ),
        "StatusCallback": (
            f"{PUBLIC_URL}/webhooks/twilio/{shop.ref.id}/status?m={messages(database, shop)[0].id}"
        ),
    }
    (say,) = ET.fromstring(request.form["Twiml"])
    assert (say.tag, say.attrib, say.text) == (
        "Say",
        {"language": "pt-BR"},
        f"Olá, aqui é da {shop.ref.name} & cia: boleto <vence> hoje.",
    )
    (message,) = messages(database, shop)
    assert (message.channel, message.status, message.provider_message_id) == (
        "voice",
        "sent",
        request.sid,
    )
    assert request.sid.startswith("CA")


def test_the_library_boleto_call_and_an_audio_file(
    database: Database, shop: Shop, twilio: TwilioApi
) -> None:
    """The library's boleto-due-call is spoken; a body that is an audio URL is played."""
    use_twilio(
        database, shop, twilio, T0, channel="voice", **{"from": SENDER}, voice="Polly.Camila"
    )
    ana = sms_customer(database, shop, T0)
    trigger = {"amount": "89.90", "order_id": "1"}
    enqueue_send(
        database, shop, ana, T0, channel="voice", template="boleto-due-call", trigger=trigger
    )
    send_now(database, T0)
    spoken = ET.fromstring(twilio.received[0].form["Twiml"])
    (say,) = spoken
    assert say.attrib == {"voice": "Polly.Camila", "language": "pt-BR"}
    assert say.text is not None
    assert say.text.startswith(f"Olá, aqui é da {shop.ref.name}. Seu boleto de R$")
    # a workspace's recorded message instead
    own_voice_text(database, shop, "https://loja.test/audio/boleto-vence-hoje.mp3")
    later = T0 + timedelta(hours=1)
    enqueue_send(database, shop, ana, later, channel="voice", template="boleto-due-call")
    send_now(database, later)
    assert twilio.received[1].form["Twiml"] == (
        "<Response><Play>https://loja.test/audio/boleto-vence-hoje.mp3</Play></Response>"
    )


def test_twilio_down_keeps_the_message_queued_and_shows_an_incident(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """Connection refused, then a 503: queued, no attempt counted, `down` in the health API."""
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0)
    twilio.stop()  # nothing listens any more: connection refused
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.status, message.attempts, message.sent_at) == ("queued", 0, None)
    assert message.error is not None
    assert message.error.startswith("cannot reach the Twilio API")
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    health = app.get("/api/v1/health/integrations", headers=headers).json()
    (channel,) = health["channels"]
    assert (channel["channel"], channel["status"], channel["queued"]) == ("sms", "down", 1)
    assert channel["incident"]["provider"] == "twilio"
    # back, but answering 503
    twilio.start()
    use_twilio(database, shop, twilio, T0)  # its new port
    twilio.fail_with = (503, {"code": 20500, "message": "Internal Server Error", "status": 503})
    send_now(database, T0 + timedelta(hours=1))
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", 0)
    assert message.error == "Twilio: HTTP 503 code 20500: Internal Server Error"
    # and well again
    twilio.fail_with = None
    send_now(database, T0 + timedelta(hours=2))
    (message,) = messages(database, shop)
    assert message.status == "sent"
    health = app.get("/api/v1/health/integrations", headers=headers).json()
    assert health["channels"][0]["status"] == "ok"


@pytest.mark.parametrize(
    ("_case", "status", "code", "outcome", "listed"),
    [
        ("invalid number", 400, 21211, ("failed", 1), [("sms", PHONE, "hard_bounce")]),
        ("not a mobile", 400, 21614, ("failed", 1), [("sms", PHONE, "hard_bounce")]),
        ("replied STOP", 400, 21610, ("failed", 1), [("sms", PHONE, "stop")]),
        ("region not enabled", 400, 21408, ("failed", 1), []),
        ("too many requests", 429, 20429, ("queued", 1), []),
        ("token refused", 401, 20003, ("queued", 0), []),
        ("callback URL refused", 400, 21609, ("queued", 0), []),
    ],
)
def test_twilio_errors_map_to_failure_retry_or_outage(
    database: Database,
    shop: Shop,
    twilio: TwilioApi,
    _case: str,
    status: int,
    code: int,
    outcome: tuple[str, int],
    listed: list[tuple[str, str, str]],
) -> None:
    """A rejected number bounces, STOP'd lists as stop, throttling retries, auth is an outage."""
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0)
    twilio.fail_with = (
        status,
        {
            "code": code,
            "message": f"Twilio says {code}",
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == outcome
    assert message.error is not None
    assert message.error.startswith(
        f"Twilio: HTTP {status} code {code}: Twilio says {code}"
        f" (https://www.twilio.com/docs/errors/{code})"
    )
    if code == 21609:
        assert message.error.endswith("JORNADA_PUBLIC_URL must be an address Twilio reaches")
    assert suppressions(database, shop) == listed


def test_voice_through_a_messaging_service_only_is_an_outage_naming_the_option(
    database: Database, shop: Shop, twilio: TwilioApi
) -> None:
    """A call needs a number: the message waits, and the incident says which option is missing."""
    use_twilio(database, shop, twilio, T0, channel="voice", messaging_service_sid=SERVICE_SID)
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0, channel="voice", template="boleto-due-call")
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", 0)
    assert message.error == (
        "Twilio calls need a from number (options.from): a messaging service only sends SMS"
    )
    assert twilio.received == []


# -- status callbacks ----------------------------------------------------------------------
def test_signed_status_callbacks_move_the_sms_to_delivered_or_failed(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient, clock: VirtualClock
) -> None:
    """sent → delivered with its time; a later undelivered keeps Twilio's ErrorCode."""
    message, request = sent_sms(database, shop, twilio)
    clock.set(T0 + timedelta(seconds=5))
    assert twilio.send_status(app, request, "sent").json() == {"statuses": 1}
    clock.set(T0 + timedelta(seconds=9))
    answer = twilio.send_status(app, request, "delivered")
    assert answer.status_code == 200
    (message,) = messages(database, shop)
    assert (message.status, message.sent_at, message.delivered_at) == (
        "delivered",
        T0,
        T0 + timedelta(seconds=9),
    )
    # a late "sent" does not move it back
    twilio.send_status(app, request, "sent")
    (message,) = messages(database, shop)
    assert message.status == "delivered"
    clock.set(T0 + timedelta(minutes=1))
    twilio.send_status(app, request, "undelivered", ErrorCode="30003")
    (message,) = messages(database, shop)
    assert (message.status, message.failed_at, message.error) == (
        "failed",
        T0 + timedelta(minutes=1),
        "Twilio SMS undelivered: error 30003 (unreachable destination handset)",
    )
    assert suppressions(database, shop) == []


def test_an_unknown_handset_bounces_and_lists_the_number(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """ErrorCode 30005 in a status callback: bounced, and the number listed for SMS."""
    _, request = sent_sms(database, shop, twilio)
    twilio.send_status(app, request, "failed", ErrorCode="30005")
    (message,) = messages(database, shop)
    assert (message.status, message.bounced_at) == ("bounced", T0)
    assert message.error == "Twilio SMS failed: error 30005 (unknown destination handset)"
    assert suppressions(database, shop) == [("sms", PHONE, "hard_bounce")]


def test_call_status_callbacks_completed_and_busy(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """completed: the call was answered (delivered); busy: failed, saying so."""
    use_twilio(database, shop, twilio, T0, channel="voice", **{"from": SENDER})
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0, channel="voice", template="boleto-due-call")
    enqueue_send(
        database, shop, ana, T0 + timedelta(minutes=1), channel="voice", template="boleto-due-call"
    )
    send_now(database, T0 + timedelta(minutes=1))
    first, second = twilio.received
    answered = "Tue, 03 Nov 2026 13:02:00 +0000"
    stamp = {"Timestamp": answered, "CallDuration": "21"}
    assert twilio.send_status(app, first, "completed", **stamp).json() == {"statuses": 1}
    assert twilio.send_status(app, second, "busy").json() == {"statuses": 1}
    by_sid = {m.provider_message_id: m for m in messages(database, shop)}
    assert (by_sid[first.sid].status, by_sid[first.sid].delivered_at) == (
        "delivered",
        datetime(2026, 11, 3, 13, 2, tzinfo=UTC),
    )
    assert (by_sid[second.sid].status, by_sid[second.sid].error) == (
        "failed",
        "Twilio call busy: the line was busy",
    )


def test_a_status_that_comes_before_the_sid_is_recorded_still_counts(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """Twilio may call back while the delivery pass still waits for its answer: the callback
    URL names our message, and the pass's record never moves the status back."""
    callbacks: list[int] = []
    twilio.on_request = lambda request: callbacks.append(
        twilio.send_status(app, request, "delivered").json()["statuses"]
    )
    message, request = sent_sms(database, shop, twilio)
    assert callbacks == [1]
    assert (message.status, message.provider_message_id) == ("delivered", request.sid)
    assert (message.sent_at, message.error) == (T0, None)
    assert message.delivered_at is not None
    # and a failure reported that early keeps its error
    twilio.on_request = lambda request: callbacks.append(
        twilio.send_status(app, request, "undelivered", ErrorCode="30003").json()["statuses"]
    )
    ana = sms_customer(database, shop, T0)
    enqueue_send(database, shop, ana, T0 + timedelta(minutes=1))
    send_now(database, T0 + timedelta(minutes=1))
    failed = next(m for m in messages(database, shop) if m.id != message.id)
    assert callbacks == [1, 1]
    assert failed.status == "failed"
    assert failed.error is not None
    assert "30003" in failed.error


def test_bad_or_missing_signature_is_a_401_and_nothing_changes(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """Another token, no header, a tampered parameter, or another URL: 401, message as it was."""
    _, request = sent_sms(database, shop, twilio)
    params = twilio.status_params(request, "undelivered", ErrorCode="30003")
    url = request.form["StatusCallback"]
    forged = twilio.post_signed(app, url, params, token="0" * 32)
    signed_other = twilio.sign(url, {**params, "ErrorCode": "30005"})
    tampered = twilio.post_signed(app, url, params, signature=signed_other)
    elsewhere = twilio.post_signed(
        app, url, params, signature=twilio.sign(url.replace("jornada.test", "evil.test"), params)
    )
    unsigned = app.post(httpx.URL(url).path, data=params)
    assert [r.status_code for r in (forged, tampered, elsewhere, unsigned)] == [401] * 4
    assert forged.json()["field"] == "X-Twilio-Signature"
    (message,) = messages(database, shop)
    assert (message.status, message.error, message.failed_at) == ("sent", None, None)
    # the inbound SMS endpoint is guarded the same way
    inbound = twilio.inbound_params(PHONE, SENDER, "SAIR", "SMforged")
    refused = twilio.post_signed(app, hook(shop, "sms"), inbound, token="0" * 32)
    assert refused.status_code == 401
    assert suppressions(database, shop) == []
    assert events_named(database, shop, UNSUBSCRIBED) == []


def test_a_workspace_without_twilio_has_no_callbacks(app: AsgiClient, shop: Shop) -> None:
    """No Twilio provider: the callback URLs are a 404."""
    answer = app.post(f"/webhooks/twilio/{shop.ref.id}/status", data={"MessageSid": "SM1"})
    assert answer.status_code == 404


# -- inbound SMS ---------------------------------------------------------------------------
@pytest.mark.parametrize("word", ["SAIR", "stop", "  Parar. ", "Cancelár", "STOPALL"])
def test_stop_lists_the_phone_and_withdraws_sms_consent(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient, word: str
) -> None:
    """The keyword (any case, accents, spaces) lists the phone; the next SMS is suppressed."""
    # given
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    # when
    answer = text_in(twilio, app, shop, word)
    # then
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text == "<Response/>"
    assert suppressions(database, shop) == [("sms", PHONE, "stop"), ("voice", PHONE, "stop")]
    assert consent_history(database, ana)[-1] == ("sms_marketing", False, "sms STOP")
    ((contact, properties),) = events_named(database, shop, UNSUBSCRIBED)
    assert (contact, properties["channel"]) == (ana, "sms")
    assert events_named(database, shop, MESSAGE_REPLIED) == []
    # the next SMS, even a transactional one, and a call are suppressed with the reason
    later = T0 + timedelta(hours=1)
    enqueue_send(database, shop, ana, later)
    enqueue_send(database, shop, ana, later, channel="voice", template="boleto-due-call")
    send_now(database, later)
    assert outbox(database, shop) == [("suppressed", "suppressed: stop")] * 2
    assert twilio.received == []


def test_start_takes_the_phone_off_the_list_and_restores_consent(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """VOLTAR after PARAR: off the list, consent back (source `sms START`), marketing SMS go."""
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    assert text_in(twilio, app, shop, "PARAR", sid="SMin0001").status_code == 200
    # when Ana comes back
    answer = text_in(twilio, app, shop, "Voltar", sid="SMin0002")
    # then
    assert answer.text == "<Response/>"
    assert suppressions(database, shop) == []
    assert consent_history(database, ana)[-2:] == [
        ("sms_marketing", False, "sms STOP"),
        ("sms_marketing", True, "sms START"),
    ]
    enqueue_send(database, shop, ana, T0 + timedelta(hours=1), purpose="marketing")
    send_now(database, T0 + timedelta(hours=1))
    assert outbox(database, shop) == [("done", None)]
    (request,) = twilio.received
    assert request.form["To"] == PHONE


def test_start_leaves_a_bounce_listed(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """Only the STOP entries go: a number that bounced stays listed for SMS."""
    use_twilio(database, shop, twilio, T0)
    sms_customer(database, shop, T0)
    text_in(twilio, app, shop, "SAIR", sid="SMin0001")
    with database.write() as session:
        suppress(session, shop.ref.id, "sms", PHONE, "hard_bounce", T0)
    text_in(twilio, app, shop, "START", sid="SMin0002")
    assert suppressions(database, shop) == [("sms", PHONE, "hard_bounce")]


def test_help_answers_with_the_shop_and_alerts_the_team(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """AJUDA: a pt-BR TwiML <Message> naming the shop, and a team notification for Ana."""
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    answer = text_in(twilio, app, shop, " ajuda ")
    assert answer.status_code == 200
    (message,) = ET.fromstring(answer.text)
    assert message.tag == "Message"
    assert message.text == (
        f"{shop.ref.name}: você recebe nossos SMS porque é nosso cliente. Para não receber mais,"
        f" responda SAIR; para voltar a receber, VOLTAR. Atendimento: {SHOP_URL}"
    )
    with database.read() as session:
        (alert,) = session.scalars(select(OutboxItem).where(OutboxItem.workspace_id == shop.ref.id))
    assert (alert.kind, alert.contact_id, alert.status) == ("notify", ana, "pending")
    assert alert.payload["to"] == "team"
    assert alert.payload["message"] == f"SMS de {PHONE} pediu ajuda: ajuda"
    # Twilio retries the same SMS: still one alert
    text_in(twilio, app, shop, " ajuda ")
    dispatch_due(database, T0)
    (notified,) = messages(database, shop)
    assert (notified.channel, notified.body) == ("notify", f"SMS de {PHONE} pediu ajuda: ajuda")
    assert suppressions(database, shop) == []
    assert events_named(database, shop, MESSAGE_REPLIED) == []


def test_any_other_text_is_a_reply_to_our_last_sms(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient, clock: VirtualClock
) -> None:
    """Message Replied (channel sms) for Ana; the SMS it answers becomes `replied`."""
    message, _ = sent_sms(database, shop, twilio)
    clock.set(T0 + timedelta(minutes=3))
    answer = text_in(twilio, app, shop, "Quero fechar hoje", sid="SMin0042")
    assert answer.text == "<Response/>"
    ((contact, properties),) = events_named(database, shop, MESSAGE_REPLIED)
    assert contact == message.contact_id
    assert properties == {
        "channel": "sms",
        "text": "Quero fechar hoje",
        "type": "text",
        "twilio_message_sid": "SMin0042",
        "message_id": message.id,
        "template": "proposal-urgency-sms",
    }
    (message,) = messages(database, shop)
    assert (message.status, message.replied_at) == ("replied", T0 + timedelta(minutes=3))
    # Twilio posts it again: still one reply
    text_in(twilio, app, shop, "Quero fechar hoje", sid="SMin0042")
    assert len(events_named(database, shop, MESSAGE_REPLIED)) == 1


def test_a_stranger_texting_becomes_a_contact_with_that_phone(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """No contact has the number: the reply makes one with that phone."""
    use_twilio(database, shop, twilio, T0)
    assert text_in(twilio, app, shop, "Oi, vocês entregam em Campinas?").status_code == 200
    ((contact_id, properties),) = events_named(database, shop, MESSAGE_REPLIED)
    assert properties["text"] == "Oi, vocês entregam em Campinas?"
    with database.read() as session:
        contact = session.get(Contact, contact_id)
    assert contact is not None
    assert contact.phone == PHONE


def test_proposal_flow_sends_the_sms_and_a_reply_ends_the_run(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient, clock: VirtualClock
) -> None:
    """The library's proposal-urgency flow texts Ana through Twilio; her answer exits the run."""
    flow = next(f for f in library_flows() if f.key == "proposal-urgency")
    with database.write() as session:
        install(session, shop.ref.id, flow, now=T0)
    use_twilio(database, shop, twilio, T0)
    ana = sms_customer(database, shop, T0)
    views = [
        {
            "type": "track",
            "userId": "ana",
            "event": "Proposal Viewed",
            "timestamp": (T0 - timedelta(minutes=10 * n)).isoformat(),
            "messageId": f"view-{n}",
            "properties": {"proposal_id": "P-7"},
        }
        for n in range(3)
    ]
    assert accept_messages(database, shop.ref, views, received_at=T0).rejected == []
    tick(database, T0, courier=courier())
    (request,) = twilio.received
    assert request.form["Body"].startswith(f"{shop.ref.name}: sua proposta")
    with database.read() as session:
        (run,) = session.scalars(
            select(FlowRun).where(FlowRun.workspace_id == shop.ref.id, FlowRun.contact_id == ana)
        )
    assert run.status == "active"
    # when Ana answers the SMS
    clock.set(T0 + timedelta(minutes=5))
    assert text_in(twilio, app, shop, "Pode me ligar?").status_code == 200
    # then the run ended on her reply and the SMS shows it
    with database.read() as session:
        run = session.scalars(
            select(FlowRun).where(FlowRun.workspace_id == shop.ref.id, FlowRun.contact_id == ana)
        ).one()
    assert run.status == "exited"
    sms = next(m for m in messages(database, shop) if m.channel == "sms")
    assert (sms.status, sms.replied_at) == ("replied", T0 + timedelta(minutes=5))


def test_help_from_a_stranger_makes_the_contact_the_alert_points_at(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """HELP from an unknown number: a contact with that phone, and the alert for it."""
    use_twilio(database, shop, twilio, T0)
    answer = text_in(twilio, app, shop, "HELP")
    assert ET.fromstring(answer.text)[0].tag == "Message"
    with database.read() as session:
        (alert,) = session.scalars(select(OutboxItem).where(OutboxItem.workspace_id == shop.ref.id))
        contact = session.get(Contact, alert.contact_id)
    assert contact is not None
    assert (alert.kind, contact.phone) == ("notify", PHONE)


def test_a_shared_key_signature_is_refused_saying_why(
    database: Database, shop: Shop, twilio: TwilioApi, app: AsgiClient
) -> None:
    """Webhook Rules sign with a SharedKey Jornada does not hold: a 401 that names the header."""
    use_twilio(database, shop, twilio, T0)
    params = twilio.inbound_params(PHONE, SENDER, "SAIR", "SMshared")
    answer = app.post(
        httpx.URL(hook(shop, "sms")).path,
        data=params,
        headers={
            "X-Twilio-Signature": twilio.sign(hook(shop, "sms"), params, token="1" * 32),
            "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
        },
    )
    assert answer.status_code == 401
    assert "X-Twilio-Webhooks-Signature-Settings" in answer.json()["message"]
    assert suppressions(database, shop) == []


def test_stop_through_a_live_server_behind_a_tunnel(
    server_shop: tuple[LiveServer, Shop, Database], twilio: TwilioApi
) -> None:
    """`jornada serve` checks the signature over its JORNADA_PUBLIC_URL, wherever it is reached."""
    live, shop, database = server_shop
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            "sms",
            options=GOOD,
            secrets={"auth_token": twilio.auth_token},
            base_url=twilio.url,
            now=T0,
            keys=server_keys(live),
        )
    public = os.environ.get("JORNADA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    url = f"{public}/webhooks/twilio/{shop.ref.id}/sms"
    params = twilio.inbound_params(PHONE, SENDER, "PARAR", "SMlive0001")
    with httpx.Client(base_url=live.url, timeout=10) as client:
        forged = twilio.post_signed(client, url, params, token="0" * 32)
        answer = twilio.post_signed(client, url, params)
    assert forged.status_code == 401
    assert (answer.status_code, answer.text) == (200, "<Response/>")
    assert suppressions(database, shop) == [("sms", PHONE, "stop"), ("voice", PHONE, "stop")]
