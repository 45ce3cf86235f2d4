"""Opens, clicks, one-click unsubscribe and bounce/complaint intake, through a live `jornada serve`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from jornada.channels.models import Suppression
from jornada.channels.providers import Keyring, load_keyring
from jornada.channels.tracking import sign_token
from jornada.contacts import ConsentRecord
from jornada.db import Database
from tests.channels.conftest import customer, enqueue_email, messages, outbox, send_now, use_smtp
from tests.conftest import Shop
from tests.support.server import LiveServer
from tests.support.smtp import Received, SmtpServer

Live = tuple[LiveServer, Shop, Database]


def server_keys(live: LiveServer) -> Keyring:
    """The live server's keyring: the secret.key it generated beside its database."""
    return load_keyring(None, live.database_url)


def admin(live: LiveServer, shop: Shop) -> httpx.Client:
    return httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {shop.keys.secret_key}"}, timeout=10
    )


def mailed(server_shop: Live, smtp: SmtpServer, **kwargs: Any) -> tuple[str, Received]:
    """A marketing e-mail to Ana, delivered for real with the server's links; (contact id, mail)."""
    live, shop, database = server_shop
    now = datetime.now(UTC)
    use_smtp(database, shop, smtp, now, keys=server_keys(live))
    ana = customer(database, shop, now, **kwargs)
    enqueue_email(database, shop, ana, now)
    send_now(database, now, server_keys(live), live.url)
    (received,) = smtp.received
    return ana, received


def html_of(received: Received) -> str:
    return received.message().get_body(("html",)).get_content()


def events(live: LiveServer, shop: Shop, contact_id: str) -> list[dict[str, Any]]:
    with admin(live, shop) as client:
        answer = client.get(f"/api/v1/contacts/{contact_id}/events")
    assert answer.status_code == 200
    return list(answer.json()["data"])


def test_open_pixel_records_the_open_once(server_shop: Live, smtp: SmtpServer) -> None:
    """A 1x1 GIF; the message becomes opened; one Message Opened event, however many loads."""
    live, shop, database = server_shop
    ana, received = mailed(server_shop, smtp)
    pixel = re.search(r'<img src="([^"]+/o/[^"]+)"', html_of(received))
    assert pixel is not None
    assert pixel[1].startswith(live.url)
    # when
    first = httpx.get(pixel[1], timeout=10)
    again = httpx.get(pixel[1], timeout=10)
    # then
    for answer in (first, again):
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "image/gif"
        assert answer.content.startswith(b"GIF89a")
    (message,) = messages(database, shop)
    assert message.status == "opened"
    assert message.opened_at is not None
    assert message.opened_at >= message.sent_at
    opened = [e for e in events(live, shop, ana) if e["event"] == "Message Opened"]
    assert len(opened) == 1
    assert opened[0]["properties"]["message_id"] == message.id
    assert opened[0]["properties"]["template"] == "nurture-casos"
    with admin(live, shop) as client:
        profile = client.get(f"/api/v1/contacts/{ana}").json()
    assert profile["last_engaged_at"] is not None


def test_click_redirects_to_the_messages_own_url_and_records_it(
    server_shop: Live, smtp: SmtpServer
) -> None:
    """302 to the shop's link; Message Clicked with the URL; status clicked (opened implied)."""
    live, shop, database = server_shop
    ana, received = mailed(server_shop, smtp)
    tracked = re.search(r'<a href="([^"]+/c/[^"]+)"', html_of(received))
    assert tracked is not None
    answer = httpx.get(tracked[1], timeout=10, follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == "https://loja.test/casos"
    (message,) = messages(database, shop)
    assert message.status == "clicked"
    assert message.clicked_at is not None
    assert message.opened_at == message.clicked_at
    (clicked,) = [e for e in events(live, shop, ana) if e["event"] == "Message Clicked"]
    assert clicked["properties"]["url"] == "https://loja.test/casos"
    assert clicked["properties"]["link"] == 0


@pytest.mark.parametrize(
    "_case",
    ["tampered signature", "link index not in the message", "open token on /c/", "garbage"],
)
def test_a_bad_click_token_is_a_404_and_records_nothing(
    server_shop: Live, smtp: SmtpServer, _case: str
) -> None:
    """No open redirect: only a token this server signed, for a link of the message, redirects."""
    live, shop, database = server_shop
    ana, received = mailed(server_shop, smtp)
    (message,) = messages(database, shop)
    good = re.search(r'/c/([^"]+)"', html_of(received))
    assert good is not None
    token = {
        "tampered signature": good[1][:-2] + ("AA" if not good[1].endswith("AA") else "BB"),
        "link index not in the message": sign_token(server_keys(live), "click", message.id, 7),
        "open token on /c/": sign_token(server_keys(live), "open", message.id),
        "garbage": "c1.https%3A%2F%2Fevil.example",
    }[_case]
    answer = httpx.get(f"{live.url}/c/{token}", timeout=10, follow_redirects=False)
    assert answer.status_code == 404
    assert "location" not in answer.headers
    (message,) = messages(database, shop)
    assert message.status == "sent"
    assert [e for e in events(live, shop, ana) if e["event"] == "Message Clicked"] == []


def test_one_click_unsubscribe_withdraws_consent_and_the_gate_stops_marketing(
    server_shop: Live, smtp: SmtpServer
) -> None:
    """RFC 8058 POST: email_marketing false with source and time; the next marketing e-mail
    is suppressed; GET only asks."""
    live, shop, database = server_shop
    ana, received = mailed(server_shop, smtp)
    url = received.message()["List-Unsubscribe"].split(",")[0].strip(" <>")
    assert url.startswith(f"{live.url}/u/")
    # GET asks, in pt-BR, and changes nothing
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert 'lang="pt-BR"' in page.text
    assert "Descadastrar" in page.text
    assert 'method="post"' in page.text
    english = httpx.get(url, timeout=10, headers={"Accept-Language": "en-US,en;q=0.8"})
    assert "Stop marketing e-mails from" in english.text
    with admin(live, shop) as client:
        assert client.get(f"/api/v1/contacts/{ana}").json()["consent"]["email_marketing"]["granted"]
    # when the mail client posts the one-click body
    before = datetime.now(UTC)
    done = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    # then
    assert done.status_code == 200
    assert "não receberá mais e-mails de marketing" in done.text
    with admin(live, shop) as client:
        consent = client.get(f"/api/v1/contacts/{ana}").json()["consent"]["email_marketing"]
    assert consent["granted"] is False
    (message,) = messages(database, shop)
    assert consent["source"] == f"unsubscribe:message:{message.id}"
    assert datetime.fromisoformat(consent["at"]) >= before - timedelta(seconds=1)
    with database.read() as session:
        records = session.scalars(
            select(ConsentRecord)
            .where(ConsentRecord.contact_id == ana)
            .order_by(ConsentRecord.recorded_at)
        ).all()
    assert [(r.channel, r.purpose, r.granted) for r in records][-1] == ("email", "marketing", False)
    assert any(e["event"] == "Unsubscribed" for e in events(live, shop, ana))
    # the next marketing e-mail is stopped by the gate
    later = datetime.now(UTC)
    enqueue_email(database, shop, ana, later, template="nurture-comparativo")
    send_now(database, later, server_keys(live), live.url)
    assert outbox(database, shop)[-1] == ("suppressed", "no consent: email_marketing")
    assert len(smtp.received) == 1


def _dsn(message_id: str, address: str, status: str, action: str = "failed") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.com\r\n"
        "To: loja@loja.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"\r\n'
        "\r\n"
        "--RPT\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "The mail system could not deliver your message.\r\n"
        "--RPT\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Arrival-Date: Tue, 3 Nov 2026 13:00:05 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {address}\r\n"
        f"Original-Recipient: rfc822;{address}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} mailbox does not exist\r\n"
        "\r\n"
        "--RPT\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: Loja da Ana <loja@loja.test>\r\n"
        f"To: {address}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Subject: Como clientes como voce resolveram isso\r\n"
        "\r\n"
        "--RPT--\r\n"
    ).encode()


def _arf(address: str, original: bytes) -> bytes:
    return (
        b"From: feedback@mailbox.example\r\n"
        b"To: abuse@loja.test\r\n"
        b"Subject: FW: spam report\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"\r\n\r\n'
        b"--ARF\r\nContent-Type: text/plain\r\n\r\nThis is an e-mail abuse report.\r\n"
        b"--ARF\r\nContent-Type: message/feedback-report\r\n\r\n"
        b"Feedback-Type: abuse\r\nUser-Agent: SomeMailbox/1.0\r\nVersion: 1\r\n"
        b"Original-Mail-From: <loja@loja.test>\r\n"
        b"Original-Rcpt-To: <" + address.encode() + b">\r\n\r\n"
        b"--ARF\r\nContent-Type: message/rfc822\r\n\r\n" + original + b"\r\n--ARF--\r\n"
    )


def post_report(live: LiveServer, shop: Shop, body: bytes) -> httpx.Response:
    with admin(live, shop) as client:
        return client.post(
            "/api/v1/inbound/email", content=body, headers={"Content-Type": "message/rfc822"}
        )


def suppressions(database: Database, shop: Shop) -> list[tuple[str, str, str]]:
    with database.read() as session:
        return [
            (s.channel, s.address, s.reason)
            for s in session.scalars(
                select(Suppression).where(Suppression.workspace_id == shop.ref.id)
            )
        ]


def test_dsn_hard_bounce_marks_the_message_bounced_and_suppresses_the_address(
    server_shop: Live, smtp: SmtpServer
) -> None:
    """RFC 3464, Status 5.1.1: the quoted Message-ID names the message; the address is listed."""
    live, shop, database = server_shop
    _, received = mailed(server_shop, smtp, email="Ana@Example.com")
    message_id = received.message()["Message-ID"]
    # a delay (4.x.x) changes nothing
    delayed = post_report(live, shop, _dsn(message_id, "ana@example.com", "4.2.2", "delayed"))
    assert delayed.status_code == 200
    assert delayed.json()["suppressed"] == []
    assert suppressions(database, shop) == []
    # a permanent failure
    answer = post_report(live, shop, _dsn(message_id, "ana@example.com", "5.1.1"))
    assert answer.status_code == 200
    (message,) = messages(database, shop)
    assert answer.json() == {
        "kind": "bounce",
        "message_id": message.id,
        "suppressed": [{"address": "ana@example.com", "reason": "hard_bounce"}],
        "ignored": 0,
    }
    assert message.status == "bounced"
    assert message.bounced_at is not None
    assert "5.1.1" in (message.error or "")
    assert suppressions(database, shop) == [("email", "ana@example.com", "hard_bounce")]


def test_arf_complaint_suppresses_the_address(server_shop: Live, smtp: SmtpServer) -> None:
    """RFC 5965 feedback report: the complaining address is listed as a complaint."""
    live, shop, database = server_shop
    _, received = mailed(server_shop, smtp)
    answer = post_report(live, shop, _arf("ana@example.com", received.data))
    assert answer.status_code == 200
    assert answer.json()["kind"] == "complaint"
    assert answer.json()["message_id"] == messages(database, shop)[0].id
    assert suppressions(database, shop) == [("email", "ana@example.com", "complaint")]


def test_report_intake_refuses_what_is_not_a_report_and_needs_the_secret_key(
    server_shop: Live,
) -> None:
    live, shop, database = server_shop
    plain = post_report(live, shop, b"Subject: hello\r\n\r\njust a message\r\n")
    assert plain.status_code == 400
    assert plain.json()["field"] == "body"
    assert "multipart/report" in plain.json()["message"]
    anonymous = httpx.post(
        f"{live.url}/api/v1/inbound/email", content=_dsn("<x@y>", "a@b.c", "5.1.1"), timeout=10
    )
    assert anonymous.status_code == 401
    assert suppressions(database, shop) == []
