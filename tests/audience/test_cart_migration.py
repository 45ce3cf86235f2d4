"""Migration 0018: a closed cart stored as the JSON ``null`` becomes SQL NULL, so the
partial index and ``cart-abandoners`` (``open_cart IS NOT NULL``) stay exact."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select, text

from jornada.audience import builtin_segment, member_ids, segment_size
from jornada.contacts import Contact
from jornada.db import Database
from jornada.ingest import accept_messages
from jornada.migrations import alembic_config, upgrade
from tests.conftest import NOW, make_shop


def _ids(database: Database, workspace_id: str) -> dict[str, str]:
    with database.read() as session:
        rows = session.execute(
            select(Contact.user_id, Contact.id).where(Contact.workspace_id == workspace_id)
        )
        return {str(user): contact_id for user, contact_id in rows}


def test_a_json_null_cart_becomes_no_cart(database_url: str) -> None:
    # given: a database of before 0018 with a cart left open and a cart stored as JSON null
    command.downgrade(alembic_config(database_url), "0017")
    database = Database(database_url)
    shop = make_shop(database)
    at = NOW.isoformat()
    accept_messages(
        database,
        shop.ref,
        [
            {"type": "identify", "messageId": "i1", "userId": "open", "timestamp": at},
            {"type": "identify", "messageId": "i2", "userId": "closed", "timestamp": at},
            {
                "type": "track",
                "messageId": "t1",
                "userId": "open",
                "event": "Product Added",
                "timestamp": at,
                "properties": {"product_id": "p1", "price": "10.00", "quantity": 1},
            },
        ],
        received_at=NOW,
        trigger_flows=False,
    )
    ids = _ids(database, shop.ref.id)
    json_null = "'null'::jsonb" if database_url.startswith("postgresql") else "'null'"
    with database.write() as session:
        session.execute(
            text(f"UPDATE contacts SET open_cart = {json_null} WHERE id = :id"),
            {"id": ids["closed"]},
        )
    database.dispose()

    # when
    upgrade(database_url)

    # then
    database = Database(database_url)
    try:
        with database.read() as session:
            nulls = session.scalar(
                text("SELECT count(*) FROM contacts WHERE id = :id AND open_cart IS NULL"),
                {"id": ids["closed"]},
            )
            abandoners = builtin_segment(session, shop.ref.id, "cart-abandoners")
            members = member_ids(session, shop.ref.id, abandoners, NOW)
            size = segment_size(session, shop.ref.id, abandoners, NOW)
        assert nulls == 1
        assert members == {ids["open"]}
        assert size == 1
    finally:
        database.dispose()
