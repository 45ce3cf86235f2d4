"""A flow's webhook step, POSTed for real: signed, retried with the same idempotency key."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from jornada import __version__
from jornada.channels.providers import Keyring
from jornada.channels.webhook.keys import set_up_webhook
from jornada.contacts import Contact
from jornada.db import Database
from jornada.flows import FlowDocument, FlowRun, install
from jornada.ingest import accept_messages
from jornada.outbox import enqueue
from jornada.scheduler import Courier, tick
from tests.channels.conftest import KEYS, messages, outbox
from tests.channels.conftest import courier as public_courier
from tests.conftest import Shop
from tests.support.postgres import free_port
from tests.support.webhooks import Receiver, verify
from tests.test_cli import jornada

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)


def courier() -> Courier:
    """The receivers here listen on loopback, which only an operator's setting lets flows call."""
    return replace(public_courier(), private_webhooks=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running webhook receiver on a free loopback port."""
    server = Receiver().start()
    yield server
    server.stop()


def use_webhooks(database: Database, shop: Shop, at: datetime, keys: Keyring = KEYS) -> str:
    """Signed webhooks on for the shop; returns the signing secret."""
    with database.write() as session:
        _, secret = set_up_webhook(session, shop.ref.id, now=at, keys=keys)
    assert secret is not None
    return secret


def webhook_flow(url: str) -> FlowDocument:
    return FlowDocument.model_validate(
        {
            "key": "crm-sync",
            "name": "CRM sync",
            "trigger": {"event": "Quote Requested"},
            "steps": [
                {
                    "id": "avisa-crm",
                    "webhook": {
                        "url": url,
                        "body": {
                            "nome": "{{ contact.traits.first_name }}",
                            "itens": ["{{ trigger.product }}", 2],
                            "origem": "jornada",
                        },
                    },
                }
            ],
        }
    )


def quote_requested(database: Database, shop: Shop, url: str, at: datetime) -> str:
    """The flow installed, then Ana asks for a quote: the webhook step runs; her contact id."""
    with database.write() as session:
        install(session, shop.ref.id, webhook_flow(url), now=at)
    result = accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "identify",
                "userId": "ana",
                "timestamp": at.isoformat(),
                "traits": {"first_name": "Ana"},
            },
            {
                "type": "track",
                "userId": "ana",
                "event": "Quote Requested",
                "timestamp": at.isoformat(),
                "properties": {"product": "Mesa de jantar"},
            },
        ],
        received_at=at,
    )
    assert result.rejected == []
    with database.read() as session:
        contact_id = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == "ana")
        )
    assert contact_id is not None
    return contact_id


# -- settings ------------------------------------------------------------------------------
def test_cli_turns_webhooks_on_and_prints_the_secret_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    first = jornada(url, "channels", "set", "webhook", "--workspace", "loja")
    assert first.returncode == 0, first.stderr
    secret = first.stdout.strip()
    assert secret.startswith("whsec_")
    assert len(secret) >= 32
    again = jornada(url, "channels", "set", "webhook", "--workspace", "loja")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert "kept" in again.stderr
    (view,) = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    assert (view["channel"], view["provider"]) == ("webhook", "webhook")
    assert view["secrets"] == {"signing_secret": "********"}
    rotated = jornada(url, "channels", "set", "webhook", "--workspace", "loja", "--rotate-secret")
    assert rotated.stdout.strip() not in ("", secret)


# -- delivery ------------------------------------------------------------------------------
def test_a_500_is_retried_with_the_same_idempotency_key_and_delivered_once(
    database: Database, shop: Shop, receiver: Receiver
) -> None:
    """Both tries are signed and carry one Idempotency-Key; the second one is the only 2xx."""
    # given
    receiver.secret = use_webhooks(database, shop, T0)
    receiver.statuses = [500]
    ana = quote_requested(database, shop, f"{receiver.url}/hooks/jornada", T0)
    # when
    tick(database, T0, courier=courier())
    # then the first try failed and waits for its backoff
    assert [c.answered for c in receiver.calls] == [500]
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.error == f"webhook: {receiver.url}/hooks/jornada answered HTTP 500 " + repr(
        '{"error": "nope"}'
    )
    assert message.next_attempt_at is not None
    assert T0 + timedelta(seconds=30) <= message.next_attempt_at <= T0 + timedelta(minutes=1)
    # when the backoff has passed
    tick(database, T0 + timedelta(minutes=2), courier=courier())
    # then
    first_try, second_try = receiver.calls
    assert [c.answered for c in receiver.calls] == [500, 200]
    assert (first_try.verified, second_try.verified) == (True, True)
    key = first_try.headers["Idempotency-Key"]
    assert key == second_try.headers["Idempotency-Key"] == f"jornada-{shop.ref.id}-{message.id}"
    assert first_try.headers["X-Jornada-Timestamp"] == str(int(T0.timestamp()))
    assert second_try.headers["X-Jornada-Timestamp"] == str(
        int((T0 + timedelta(minutes=2)).timestamp())
    )
    assert first_try.headers["Content-Type"] == "application/json"
    assert first_try.headers["User-Agent"] == f"Jornada/{__version__}"
    assert first_try.body == second_try.body
    body = json.loads(second_try.body)
    with database.read() as session:
        (run,) = session.scalars(select(FlowRun).where(FlowRun.workspace_id == shop.ref.id))
    assert body == {
        "id": f"{run.id}:2",  # the run's second log entry (the first is "enter")
        "type": "flow.webhook",
        "workspace_id": shop.ref.id,
        "contact_id": ana,
        "flow": "crm-sync",
        "run_id": run.id,
        "step_id": "avisa-crm",
        "trigger": {"product": "Mesa de jantar"},
        "data": {"nome": "Ana", "itens": ["Mesa de jantar", 2], "origem": "jornada"},
    }
    (message,) = messages(database, shop)
    assert (message.status, message.sent_at, message.attempts) == (
        "sent",
        T0 + timedelta(minutes=2),
        2,
    )
    assert (message.channel, message.provider, message.to_address) == (
        "webhook",
        "webhook",
        f"{receiver.url}/hooks/jornada",
    )
    # nothing goes again
    tick(database, T0 + timedelta(hours=1), courier=courier())
    assert len(receiver.calls) == 2


def test_a_400_fails_the_message_with_the_status(
    database: Database, shop: Shop, receiver: Receiver
) -> None:
    receiver.secret = use_webhooks(database, shop, T0)
    receiver.statuses = [400]
    quote_requested(database, shop, f"{receiver.url}/hooks", T0)
    tick(database, T0, courier=courier())
    tick(database, T0 + timedelta(hours=1), courier=courier())
    assert len(receiver.calls) == 1
    (message,) = messages(database, shop)
    assert (message.status, message.failed_at, message.attempts) == ("failed", T0, 1)
    assert message.error == f"webhook: {receiver.url}/hooks answered HTTP 400 " + repr(
        '{"error": "nope"}'
    )


def test_a_receiver_with_another_secret_detects_the_mismatch(
    database: Database, shop: Shop, receiver: Receiver
) -> None:
    """The signature covers the timestamp and the exact body: another secret or a changed byte fails."""
    secret = use_webhooks(database, shop, T0)
    receiver.secret = "whsec_not-the-secret-of-this-workspace-at-all"
    quote_requested(database, shop, f"{receiver.url}/hooks", T0)
    tick(database, T0, courier=courier())
    (call,) = receiver.calls
    assert (call.verified, call.answered) == (False, 401)
    stamp, signature = call.headers["X-Jornada-Timestamp"], call.headers["X-Jornada-Signature"]
    assert verify(secret, call.body, stamp, signature)
    assert not verify(secret, call.body.replace(b"Ana", b"Ane"), stamp, signature)
    assert not verify(secret, call.body, str(int(stamp) + 1), signature)
    (message,) = messages(database, shop)
    assert message.status == "failed"
    assert message.error is not None
    assert "HTTP 401" in message.error


def test_a_receiver_that_cannot_be_reached_is_retried(database: Database, shop: Shop) -> None:
    use_webhooks(database, shop, T0)
    quote_requested(database, shop, f"http://127.0.0.1:{free_port()}/hooks", T0)
    tick(database, T0, courier=courier())
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", 1)
    assert message.error is not None
    assert message.error.startswith("webhook: cannot reach http://127.0.0.1:")


def test_without_the_webhook_channel_the_request_is_only_recorded(
    database: Database, shop: Shop, receiver: Receiver
) -> None:
    """The sandbox: the JSON that would go is stored as sent, nothing is called."""
    quote_requested(database, shop, f"{receiver.url}/hooks", T0)
    tick(database, T0, courier=courier())
    assert receiver.calls == []
    (message,) = messages(database, shop)
    assert (message.status, message.provider, message.to_address) == (
        "sent",
        "sandbox",
        f"{receiver.url}/hooks",
    )
    assert json.loads(message.body)["data"]["nome"] == "Ana"


@pytest.mark.parametrize("url", ["ftp://loja.test/hook", "file:///etc/passwd", "loja.test/hook"])
def test_only_http_urls_are_called(database: Database, shop: Shop, url: str) -> None:
    use_webhooks(database, shop, T0)
    contact = accept_messages(
        database, shop.ref, [{"type": "identify", "userId": "ana"}], received_at=T0
    )
    assert contact.rejected == []
    with database.read() as session:
        ana = session.scalars(select(Contact.id).where(Contact.workspace_id == shop.ref.id)).one()
    payload: dict[str, Any] = {"url": url, "body": {}, "flow": "crm-sync"}
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=ana,
            kind="webhook",
            idempotency_key="test:webhook",
            payload=payload,
            now=T0,
        )
    tick(database, T0, courier=courier())
    assert messages(database, shop) == []
    assert outbox(database, shop) == [("failed", f"webhook url must be http(s)://…, not {url!r}")]


def test_a_flow_with_a_non_http_webhook_is_refused_when_loaded() -> None:
    """The URL is checked with the flow, before any run reaches the step."""
    with pytest.raises(ValidationError) as error:
        webhook_flow("ftp://loja.test/hook")
    assert error.value.errors()[0]["loc"][-2:] == ("webhook", "url")


def test_a_webhook_to_the_servers_own_network_is_refused(
    database: Database, shop: Shop, receiver: Receiver
) -> None:
    """Without JORNADA_WEBHOOKS_ALLOW_PRIVATE a loopback receiver is never called: the message
    fails saying why (a shop's flow must not reach the services next to Jornada)."""
    use_webhooks(database, shop, T0)
    quote_requested(database, shop, f"{receiver.url}/hooks", T0)
    tick(database, T0, courier=public_courier())
    assert receiver.calls == []
    (message,) = messages(database, shop)
    assert message.status == "failed"
    assert message.error is not None
    assert "127.0.0.1, not a public address" in message.error
    assert "JORNADA_WEBHOOKS_ALLOW_PRIVATE" in message.error


def test_a_name_that_rebinds_to_the_servers_own_network_is_not_called(
    database: Database, shop: Shop, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name that answers a public address once, then loopback. The
    addresses a connection is opened to are checked themselves: the receiver is never called."""
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])  # public the first time, loopback ever after

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return real(host, port, *args, **kwargs)
        return real(next(answers, "127.0.0.1"), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    use_webhooks(database, shop, T0)
    url = f"http://hooks.rebind.test:{receiver.url.rsplit(':', 1)[1]}/hooks"
    quote_requested(database, shop, url, T0)
    tick(database, T0, courier=replace(public_courier(), timeout=2))
    assert receiver.calls == []
