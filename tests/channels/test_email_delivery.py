"""E-mail through a real SMTP server: what it receives, retries, bounces, outages, a library flow."""

from __future__ import annotations

import base64
import re
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select, update

from jornada.channels.delivery import LEASE, MAX_ATTEMPTS
from jornada.channels.email.processes import SmtpProcesses
from jornada.channels.health import integration_health
from jornada.channels.models import Message, Suppression
from jornada.channels.providers import Keyring
from jornada.channels.tracking import links, read_token
from jornada.clock import SystemClock
from jornada.contacts import Contact
from jornada.db import Database
from jornada.flows import install, library_flows
from jornada.ingest import accept_messages
from jornada.scheduler import Worker, deliver_due, dispatch_due, tick
from tests.channels.conftest import (
    KEYS,
    PUBLIC_URL,
    courier,
    customer,
    enqueue_email,
    messages,
    outbox,
    send_now,
    use_smtp,
)
from tests.conftest import Shop
from tests.support.smtp import SmtpServer, self_signed

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo


def test_marketing_email_is_multipart_with_inlined_css_tracking_and_unsubscribe_headers(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """The server gets text + HTML, CSS inlined, links and pixel tracked, RFC 8058 headers."""
    # given
    use_smtp(database, shop, smtp, T0)
    ana = customer(database, shop, T0)
    enqueue_email(database, shop, ana, T0)
    # when
    send_now(database, T0)
    # then
    (received,) = smtp.received
    assert received.rcpt_tos == ["ana@example.com"]
    assert received.mail_from == "loja@loja.test"
    mail = received.message()
    (message,) = messages(database, shop)
    assert (message.status, message.sent_at, message.provider) == ("sent", T0, "smtp")
    assert message.provider_message_id == mail["Message-ID"]
    assert mail["From"] == "Loja da Ana <loja@loja.test>"
    assert mail["To"] == "ana@example.com"
    assert mail["Subject"] == "Como clientes como você resolveram isso"
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    unsubscribe, mailto = (u.strip(" <>") for u in mail["List-Unsubscribe"].split(","))
    assert unsubscribe.startswith(f"{PUBLIC_URL}/u/")
    assert read_token(KEYS, "unsubscribe", unsubscribe.rsplit("/", 1)[1]).message_id == message.id
    assert mailto.startswith("mailto:loja@loja.test?subject=unsubscribe")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = mail.get_body(("plain",)).get_content()
    assert "Ana, veja três casos de clientes" in text
    assert f"Descadastre-se: {unsubscribe}" in text
    html = mail.get_body(("html",)).get_content()
    assert "<style" not in html
    assert re.search(r'<body style="[^"]*font-family: Arial', html)
    # the shop's link is now a signed redirect to index 0 of the stored body; CSS on it inlined
    tracked = re.search(r'<a href="(http://jornada\.test/c/[^"]+)" style="color: #0b57d0;">', html)
    assert tracked is not None
    token = read_token(KEYS, "click", tracked[1].rsplit("/", 1)[1])
    assert (token.message_id, token.link) == (message.id, 0)
    assert links(message.body) == [f"{'https://loja.test'}/casos"]
    assert f'<a href="{unsubscribe}"' in html
    assert re.search(r'<img src="http://jornada\.test/o/[^"]+" width="1" height="1"', html)


def test_transactional_email_has_no_unsubscribe(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """Only marketing e-mail offers unsubscribing; order e-mail must reach the customer."""
    use_smtp(database, shop, smtp, T0)
    ana = customer(database, shop, T0, marketing=False)
    enqueue_email(database, shop, ana, T0, template="b2b-welcome", purpose="transactional")
    send_now(database, T0)
    (received,) = smtp.received
    mail = received.message()
    assert mail["List-Unsubscribe"] is None
    assert mail["List-Unsubscribe-Post"] is None
    assert "Descadastre" not in mail.get_body(("html",)).get_content()


def test_dkim_signature_verifies_against_the_published_key(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """Signed with the workspace's key; verifies with its DNS record, fails once altered."""
    # given a key and the TXT record a DNS server would publish for it
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record if name == b"mail2026._domainkey.loja.test." else b""

    use_smtp(
        database,
        shop,
        smtp,
        T0,
        options={"dkim_selector": "mail2026", "dkim_domain": "loja.test"},
        secrets={"dkim_private_key": private},
    )
    ana = customer(database, shop, T0)
    enqueue_email(database, shop, ana, T0)
    # when
    send_now(database, T0)
    # then
    (received,) = smtp.received
    assert received.data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(received.data, dnsfunc=dns)
    assert asked == [b"mail2026._domainkey.loja.test."]
    signed = received.message()["DKIM-Signature"]
    assert "list-unsubscribe" in signed.lower()
    tampered = received.data.replace(b"casos de clientes", b"casos de client3s")
    assert tampered != received.data
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_starttls_and_auth(
    database: Database, shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS with a verified certificate, then AUTH; a wrong password keeps the mail queued."""
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the server's certificate is the trusted CA
    server = SmtpServer(tls=(cert, key), login=("loja", "s3nha")).start()
    try:
        use_smtp(
            database,
            shop,
            server,
            T0,
            options={"url": server.url("loja", "errada"), "security": "starttls"},
        )
        ana = customer(database, shop, T0)
        enqueue_email(database, shop, ana, T0)
        send_now(database, T0)
        (message,) = messages(database, shop)
        assert message.status == "queued"
        assert "authentication failed: 535" in (message.error or "")
        assert server.received == []
        # the right password
        use_smtp(
            database,
            shop,
            server,
            T0,
            options={"url": server.url("loja", "s3nha"), "security": "starttls"},
        )
        deliver_due(database, T0 + timedelta(hours=1), courier())
        (message,) = messages(database, shop)
        assert message.status == "sent"
        assert len(server.received) == 1
    finally:
        server.stop()


def test_rejected_recipient_fails_and_is_suppressed(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """550 5.1.1: the message fails with the server's answer; the address is a hard bounce."""
    # given
    use_smtp(database, shop, smtp, T0)
    smtp.reject("ana@example.com")
    ana = customer(database, shop, T0)
    enqueue_email(database, shop, ana, T0)
    # when
    send_now(database, T0)
    # then
    (message,) = messages(database, shop)
    assert (message.status, message.failed_at, message.attempts) == ("failed", T0, 1)
    assert "550" in (message.error or "")
    assert "no such user" in (message.error or "")
    with database.read() as session:
        (entry,) = session.scalars(select(Suppression))
    assert (entry.address, entry.reason) == ("ana@example.com", "hard_bounce")
    # the next e-mail to her is stopped by the gate
    enqueue_email(database, shop, ana, T0 + timedelta(days=2), template="nurture-comparativo")
    send_now(database, T0 + timedelta(days=2))
    assert outbox(database, shop)[-1] == ("suppressed", "suppressed: hard_bounce")
    assert smtp.received == []


def test_deferred_recipient_is_retried_with_backoff_then_given_up(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """451: queued again with a growing delay; after MAX_ATTEMPTS it fails, saying why."""
    use_smtp(database, shop, smtp, T0)
    smtp.defer("ana@example.com")
    ana = customer(database, shop, T0)
    enqueue_email(database, shop, ana, T0)
    dispatch_due(database, T0)
    now, delays = T0, []
    for _ in range(MAX_ATTEMPTS - 1):
        deliver_due(database, now, courier())
        (message,) = messages(database, shop)
        assert message.status == "queued"
        assert "451" in (message.error or "")
        assert message.next_attempt_at is not None
        delays.append(message.next_attempt_at - now)
        # not due before its time
        assert deliver_due(database, message.next_attempt_at - timedelta(seconds=1), courier()) == 0
        now = message.next_attempt_at
    # each delay lies within half and all of 1 min * 2^(attempt-1)
    for attempt, delay in enumerate(delays, start=1):
        full = timedelta(minutes=1) * 2 ** (attempt - 1)
        assert full / 2 <= delay <= full
    deliver_due(database, now, courier())
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    assert (message.error or "").startswith(f"gave up after {MAX_ATTEMPTS} attempts: ")
    assert smtp.received == []


def test_provider_down_keeps_messages_queued_and_opens_an_incident_until_it_recovers(
    database: Database, shop: Shop
) -> None:
    """Connection refused: nothing lost, no attempt counted, one incident; then sent and closed."""
    # given a server that is not running yet
    server = SmtpServer()
    use_smtp(database, shop, server, T0)
    ids = [customer(database, shop, T0, user=f"c{i}", email=f"c{i}@example.com") for i in range(3)]
    for contact_id in ids:
        enqueue_email(database, shop, contact_id, T0)
    # when it is down, twice
    send_now(database, T0)
    later = max(m.next_attempt_at for m in messages(database, shop) if m.next_attempt_at)
    deliver_due(database, later, courier())
    # then
    assert {(m.status, m.attempts) for m in messages(database, shop)} == {("queued", 0)}
    with database.read() as session:
        health = integration_health(session, shop.ref.id)
    (email,) = health["channels"]
    assert (email["channel"], email["status"], email["queued"]) == ("email", "down", 3)
    incident = email["incident"]
    assert incident["opened_at"] == T0
    assert incident["last_failure_at"] == later
    assert incident["failures"] == 4  # two connections, two passes
    assert "cannot connect" in incident["last_error"]
    # when it comes back
    server.start()
    try:
        back = later + timedelta(hours=1)
        deliver_due(database, back, courier())
    finally:
        server.stop()
    assert {m.status for m in messages(database, shop)} == {"sent"}
    assert sorted(r.rcpt_tos[0] for r in server.received) == [
        "c0@example.com",
        "c1@example.com",
        "c2@example.com",
    ]
    with database.read() as session:
        health = integration_health(session, shop.ref.id)
    assert health["channels"][0]["status"] == "ok"
    assert health["channels"][0]["incident"] is None
    (closed,) = health["incidents"]
    assert (closed["closed_at"], closed["failures"]) == (back, 4)


def test_without_a_provider_the_sandbox_keeps_the_message(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """No provider for e-mail: stored as sent by the sandbox, nothing reaches any server."""
    ana = customer(database, shop, T0)
    enqueue_email(database, shop, ana, T0)
    send_now(database, T0)
    (message,) = messages(database, shop)
    assert (message.provider, message.status, message.sent_at) == ("sandbox", "sent", T0)
    assert smtp.received == []


def test_cart_abandonment_flow_sends_a_real_email(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """The library flow, on the scheduler's clock: an hour after checkout the cart e-mail arrives."""
    # given
    cart = next(f for f in library_flows() if f.key == "cart-abandonment")
    with database.write() as session:
        install(session, shop.ref.id, cart, now=T0)
    use_smtp(database, shop, smtp, T0)
    customer(database, shop, T0)
    accept_messages(
        database,
        shop.ref,
        [
            {
                "type": "track",
                "userId": "ana",
                "event": "Product Added",
                "timestamp": T0.isoformat(),
                "properties": {"product_id": "p1", "name": "Caneca Azul", "price": "39.90"},
            },
            {
                "type": "track",
                "userId": "ana",
                "event": "Checkout Started",
                "timestamp": T0.isoformat(),
                "properties": {"checkout_url": "https://loja.test/c/1", "value": "39.90"},
            },
        ],
        received_at=T0,
    )
    # when
    tick(database, T0 + timedelta(minutes=59), courier=courier())
    assert smtp.received == []
    tick(database, T0 + timedelta(hours=1), courier=courier())
    # then
    (received,) = smtp.received
    mail = received.message()
    assert mail["Subject"] == "Você esqueceu 1 item no carrinho"
    html = mail.get_body(("html",)).get_content()
    assert "Caneca Azul: R$\xa039,90" in html or "Caneca Azul: R$ 39,90" in html
    email = next(m for m in messages(database, shop) if m.channel == "email")
    assert (email.status, email.sent_at) == ("sent", T0 + timedelta(hours=1))
    assert links(email.body) == ["https://loja.test/c/1"]


def test_secrets_under_another_key_keep_messages_queued_with_an_incident(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """A server restarted with a different JORNADA_SECRET_KEY cannot decrypt: nothing is lost."""
    use_smtp(database, shop, smtp, T0)
    ana = customer(database, shop, T0)
    enqueue_email(database, shop, ana, T0)
    dispatch_due(database, T0)
    deliver_due(database, T0, courier(Keyring("not-the-key-the-secrets-were-saved-with")))
    (message,) = messages(database, shop)
    assert (message.status, message.attempts) == ("queued", 0)
    with database.read() as session:
        (email,) = integration_health(session, shop.ref.id)["channels"]
    assert email["status"] == "down"
    assert "cannot be decrypted" in email["incident"]["last_error"]
    assert smtp.received == []
    # with the right key it goes
    deliver_due(database, T0 + timedelta(hours=1), courier())
    assert messages(database, shop)[0].status == "sent"
    assert len(smtp.received) == 1


def test_a_lapsed_lease_fails_marketing_and_sends_transactional_again(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """A worker died holding two e-mails: marketing is not sent twice, an order e-mail is."""
    # given: both queued, then leased by a worker that never came back
    use_smtp(database, shop, smtp, T0)
    ana = customer(database, shop, T0)
    bia = customer(database, shop, T0, user="bia", email="bia@example.com")
    enqueue_email(database, shop, ana, T0)
    enqueue_email(database, shop, bia, T0, template="b2b-welcome", purpose="transactional")
    dispatch_due(database, T0)
    with database.write() as session:
        session.execute(
            update(Message)
            .where(Message.workspace_id == shop.ref.id)
            .values(status="sending", attempts=1, next_attempt_at=T0 + LEASE)
        )

    # when: a delivery pass after the lease lapsed
    later = T0 + LEASE + timedelta(seconds=1)
    deliver_due(database, later, courier())

    # then
    marketing, transactional = messages(database, shop)
    assert (marketing.status, marketing.attempts) == ("failed", 1)
    assert marketing.error == "interrupted while sending; marketing is not sent twice"
    assert marketing.failed_at == later
    assert (transactional.status, transactional.attempts) == ("sent", 2)
    assert [r.rcpt_tos for r in smtp.received] == [["bia@example.com"]]


@pytest.mark.parametrize("senders", ["threads", "processes"])
def test_the_worker_delivers_batch_after_batch_each_email_once(
    database: Database, shop: Shop, smtp: SmtpServer, senders: str
) -> None:
    """The worker's loops, as ``serve`` runs them: 1,100 e-mails (three claims, the
    next claimed while the last is on the wire) reach the server once each and are
    all recorded ``sent`` after one attempt, from threads or from sender processes."""
    # given 1,100 opted-in contacts with an e-mail each, due now
    now = datetime.now(UTC)
    use_smtp(database, shop, smtp, now - timedelta(days=2))
    people = [
        {
            "type": "identify",
            "userId": f"c{i}",
            "timestamp": (now - timedelta(days=1)).isoformat(),
            "traits": {"email": f"c{i}@example.com", "consent": {"email_marketing": True}},
        }
        for i in range(1_100)
    ]
    accepted = accept_messages(database, shop.ref, people, received_at=now - timedelta(days=1))
    assert accepted.rejected == []
    with database.read() as session:
        ids = list(session.scalars(select(Contact.id).where(Contact.workspace_id == shop.ref.id)))
    for contact_id in ids:
        enqueue_email(database, shop, contact_id, now)
    # when the worker runs until every message is out
    processes = SmtpProcesses(2) if senders == "processes" else None
    worker = Worker(
        database, SystemClock(), idle_seconds=0.05, courier=replace(courier(), senders=processes)
    )
    worker.start()
    try:
        deadline = datetime.now(UTC) + timedelta(minutes=3)
        while len(smtp.received) < 1_100 and datetime.now(UTC) < deadline:
            threading.Event().wait(0.1)
    finally:
        worker.stop()  # what is on the wire is recorded before it stops
    # then
    recipients = [r.rcpt_tos[0] for r in smtp.received]
    assert len(recipients) == 1_100 == len(set(recipients))
    assert {(m.status, m.attempts) for m in messages(database, shop)} == {("sent", 1)}
