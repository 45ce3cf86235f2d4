"""Batches that arrive together are committed together, each message once, each caller told truly."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from jornada.db import Database
from jornada.events import Event
from jornada.ingest import IngestResult, accept_messages
from tests.conftest import NOW, Shop


def test_concurrent_batches_store_every_message_once(database: Database, shop: Shop) -> None:
    # eight callers, each sending 50 messages, half of them also sent by the next caller
    def batch(n: int) -> list[dict[str, Any]]:
        return [
            {
                "type": "track",
                "userId": f"pessoa-{(n * 25 + i) % 60}",
                "event": "Product Viewed",
                "messageId": f"m-{n * 25 + i}",
                "timestamp": NOW.isoformat(),
                "properties": {"product_id": f"p{i}"},
            }
            for i in range(50)
        ]

    results: dict[int, IngestResult] = {}
    start = threading.Barrier(8)

    def send(n: int) -> None:
        start.wait()
        results[n] = accept_messages(database, shop.ref, batch(n), received_at=NOW)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    distinct = {m["messageId"] for n in range(8) for m in batch(n)}
    assert len(distinct) == 7 * 25 + 50  # 225
    assert sum(r.accepted for r in results.values()) == len(distinct)
    assert sum(r.duplicates for r in results.values()) == 8 * 50 - len(distinct)
    assert all(r.accepted + r.duplicates == 50 for r in results.values())
    with database.read() as session:
        stored = session.scalar(
            select(func.count()).select_from(Event).where(Event.workspace_id == shop.ref.id)
        )
    assert stored == len(distinct)
