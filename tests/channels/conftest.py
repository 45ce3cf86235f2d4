"""Fixtures for delivery tests: a real SMTP server, a shop with an e-mail provider, queued e-mails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from jornada.channels.models import Message
from jornada.channels.providers import Keyring, set_provider
from jornada.contacts import Contact
from jornada.db import Database
from jornada.ingest import accept_messages
from jornada.outbox import OutboxItem, enqueue
from jornada.scheduler import Courier, deliver_due, dispatch_due
from jornada.workspaces import Workspace
from tests.conftest import Shop
from tests.support.smtp import SmtpServer

KEYS = Keyring("a-test-secret-that-is-long-enough")
SHOP_URL = "https://loja.test"
PUBLIC_URL = "http://jornada.test"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A running SMTP server on a free loopback port."""
    server = SmtpServer().start()
    yield server
    server.stop()


def courier(keys: Keyring = KEYS, public_url: str = PUBLIC_URL) -> Courier:
    return Courier(keys=keys, public_url=public_url, connections=2, timeout=5)


def use_smtp(
    database: Database,
    shop: Shop,
    server: SmtpServer,
    at: datetime,
    *,
    keys: Keyring = KEYS,
    options: dict[str, Any] | None = None,
    secrets: dict[str, str | None] | None = None,
) -> None:
    """Point the shop's e-mail at ``server`` (plain SMTP unless ``options`` say otherwise)."""
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            "email",
            options={
                "url": server.url(),
                "security": "none",
                "from": "Loja da Ana <loja@loja.test>",
                **(options or {}),
            },
            secrets=secrets,
            now=at,
            keys=keys,
        )
        workspace = session.get(Workspace, shop.ref.id)
        assert workspace is not None
        workspace.url = SHOP_URL


def customer(
    database: Database,
    shop: Shop,
    at: datetime,
    *,
    user: str = "ana",
    email: str = "ana@example.com",
    marketing: bool = True,
    locale: str | None = None,
) -> str:
    """A contact who opted in to marketing e-mail the day before ``at``; returns its id."""
    message: dict[str, Any] = {
        "type": "identify",
        "userId": user,
        "timestamp": (at - timedelta(days=1)).isoformat(),
        "traits": {
            "email": email,
            "first_name": user.capitalize(),
            "consent": {"email_marketing": marketing},
        },
    }
    if locale:
        message["context"] = {"locale": locale}
    result = accept_messages(database, shop.ref, [message], received_at=at - timedelta(days=1))
    assert result.rejected == []
    with database.read() as session:
        contact_id = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == user)
        )
    assert contact_id is not None
    return contact_id


def enqueue_email(
    database: Database,
    shop: Shop,
    contact_id: str,
    at: datetime,
    *,
    template: str = "nurture-casos",
    purpose: str = "marketing",
    key: str | None = None,
) -> None:
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=contact_id,
            kind="send",
            channel="email",
            idempotency_key=key or f"test:{contact_id}:{template}:{at.isoformat()}",
            payload={"template": template, "purpose": purpose},
            now=at,
        )


def send_now(
    database: Database, at: datetime, keys: Keyring = KEYS, public_url: str = PUBLIC_URL
) -> None:
    """Dispatch (gate + render + queue) and deliver what is due at ``at``."""
    dispatch_due(database, at)
    deliver_due(database, at, courier(keys, public_url))


def messages(database: Database, shop: Shop) -> list[Message]:
    with database.read() as session:
        return list(
            session.scalars(
                select(Message).where(Message.workspace_id == shop.ref.id).order_by(Message.id)
            )
        )


def outbox(database: Database, shop: Shop) -> list[tuple[str, str | None]]:
    with database.read() as session:
        return [
            (i.status, i.reason)
            for i in session.scalars(
                select(OutboxItem)
                .where(OutboxItem.workspace_id == shop.ref.id)
                .order_by(OutboxItem.id)
            )
        ]
