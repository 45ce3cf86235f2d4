"""E-mail from sender processes (``JORNADA_DELIVERY_PROCESSES``, on in ``serve``): the same
messages and outcomes as from threads, through a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from jornada.channels.email.processes import SmtpProcesses
from jornada.channels.models import Message, Suppression
from jornada.db import Database
from jornada.scheduler import Courier, deliver_due, dispatch_due
from tests.channels.conftest import courier, customer, enqueue_email, messages, use_smtp
from tests.conftest import Shop
from tests.support.smtp import SmtpServer

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo


@pytest.fixture
def senders() -> Iterator[SmtpProcesses]:
    processes = SmtpProcesses(2)
    yield processes
    processes.close()


def from_processes(senders: SmtpProcesses) -> Courier:
    return replace(courier(), senders=senders)


def test_sent_refused_and_deferred_come_back_from_the_children(
    database: Database, shop: Shop, smtp: SmtpServer, senders: SmtpProcesses
) -> None:
    """Each outcome crosses the pipe: sent with its Message-ID, 550 a bounce on the
    suppression list, 451 queued again; the server got the one it accepted."""
    # given three customers, one refused and one deferred by the server
    use_smtp(database, shop, smtp, T0)
    smtp.reject("bia@example.com")
    smtp.defer("caio@example.com")
    for user in ("ana", "bia", "caio"):
        contact = customer(database, shop, T0, user=user, email=f"{user}@example.com")
        enqueue_email(database, shop, contact, T0)
    dispatch_due(database, T0)
    # when the sender processes deliver them
    assert deliver_due(database, T0, from_processes(senders)) == 3
    # then
    by_address = {m.to_address: m for m in messages(database, shop)}
    sent = by_address["ana@example.com"]
    assert (sent.status, sent.sent_at, sent.attempts) == ("sent", T0, 1)
    (received,) = smtp.received
    assert received.rcpt_tos == ["ana@example.com"]
    assert received.message()["Message-ID"] == sent.provider_message_id
    refused = by_address["bia@example.com"]
    assert refused.status == "failed"
    assert "550" in (refused.error or "")
    deferred = by_address["caio@example.com"]
    assert deferred.status == "queued"
    assert "451" in (deferred.error or "")
    assert deferred.next_attempt_at is not None
    assert deferred.next_attempt_at > T0
    with database.read() as session:
        (entry,) = session.scalars(select(Suppression))
    assert (entry.address, entry.reason) == ("bia@example.com", "hard_bounce")


def test_a_sender_process_killed_while_idle_is_replaced(
    database: Database, shop: Shop, smtp: SmtpServer, senders: SmtpProcesses
) -> None:
    """A child that died between batches held no message: a new one sends, nothing is lost."""
    # given started children that are then killed
    use_smtp(database, shop, smtp, T0)
    senders.start()
    for child in list(senders._children):
        child.process.kill()
        child.process.wait()
    for user in ("ana", "bia"):
        contact = customer(database, shop, T0, user=user, email=f"{user}@example.com")
        enqueue_email(database, shop, contact, T0)
    dispatch_due(database, T0)
    # when
    deliver_due(database, T0, from_processes(senders))
    # then
    assert {(m.status, m.attempts) for m in messages(database, shop)} == {("sent", 1)}
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["ana@example.com", "bia@example.com"]


def test_the_server_down_keeps_the_messages_queued_from_processes_too(
    database: Database, shop: Shop, senders: SmtpProcesses
) -> None:
    """Connection refused in the children: queued, no attempt counted, an incident opened."""
    server = SmtpServer()  # not started
    use_smtp(database, shop, server, T0)
    for index in range(3):
        contact = customer(database, shop, T0, user=f"c{index}", email=f"c{index}@example.com")
        enqueue_email(database, shop, contact, T0)
    dispatch_due(database, T0)
    deliver_due(database, T0 + timedelta(minutes=1), from_processes(senders))
    assert {(m.status, m.attempts) for m in messages(database, shop)} == {("queued", 0)}
    with database.read() as session:
        errors = set(session.scalars(select(Message.error)))
    assert len(errors) == 1
    assert "cannot connect" in (errors.pop() or "")
