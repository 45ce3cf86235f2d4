"""Batches that arrive together are committed together, each message once, each caller told truly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from jornada.db import Database
from jornada.events import Event
from jornada.ingest import IngestResult, accept_messages
from tests.conftest import NOW, Shop, make_shop, new_sqlite_database
from tests.support.server import start_server


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


def test_serve_with_two_processes_stores_every_batch_once(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """`jornada serve --processes 2`: concurrent clients, two server processes, one SQLite file."""
    url = new_sqlite_database(sqlite_template, tmp_path)
    database = Database(url)
    shop = make_shop(database)
    server = start_server(url, tmp_path / "serve.log", processes=2)
    try:
        bodies = [
            {
                "batch": [
                    {
                        "type": "track",
                        "userId": f"p{n % 7}",
                        "event": "Product Viewed",
                        "messageId": f"b{n}-{i}",
                        "timestamp": NOW.isoformat(),
                    }
                    for i in range(20)
                ]
            }
            for n in range(24)
        ]
        bodies.append(bodies[0])  # a resend: acknowledged, stored once

        def post(body: dict[str, Any]) -> dict[str, Any]:
            answer = httpx.post(
                f"{server.url}/v1/batch", json=body, auth=(shop.keys.write_key, ""), timeout=60
            )
            assert answer.status_code == 200, answer.text
            result: dict[str, Any] = answer.json()
            return result

        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(pool.map(post, bodies))
    finally:
        server.stop()
    assert sum(a["accepted"] for a in answers) == 24 * 20
    assert sum(a["duplicates"] for a in answers) == 20
    with database.read() as session:
        stored = session.scalar(
            select(func.count()).select_from(Event).where(Event.workspace_id == shop.ref.id)
        )
    database.dispose()
    assert stored == 24 * 20
