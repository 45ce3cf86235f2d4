"""`jornada demo` (what `make run` does before serving): seeds once, reuses after, takes events."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import func, select

from jornada.contacts import Contact, Order
from jornada.db import Database
from jornada.events import Event
from jornada.flows import FlowRun, FlowVersion
from tests.support.server import start_server
from tests.test_cli import jornada


def test_demo_seeds_once_then_serves_a_tracked_event(tmp_path: Path) -> None:
    """The demo shop is seeded, a second run reuses it, and a /v1/track with its key shows up."""
    # given
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    keys_file = tmp_path / "var" / "demo.json"
    # when
    first = jornada(url, "demo", "--contacts", "300", "--keys-file", str(keys_file))
    second = jornada(url, "demo", "--contacts", "300", "--keys-file", str(keys_file))
    # then
    assert first.returncode == 0, first.stderr
    assert "seeded" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "already seeded" in second.stderr
    keys = json.loads(keys_file.read_text())
    assert keys_file.stat().st_mode & 0o777 == 0o600
    database = Database(url)
    with database.read() as session:
        people = session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(Contact.user_id.is_not(None), Contact.merged_into_id.is_(None))
        )
        orders = session.scalar(select(func.count()).select_from(Order))
        events = session.scalar(select(func.count()).select_from(Event))
        flows = session.scalar(
            select(func.count()).select_from(FlowVersion).where(FlowVersion.active.is_(True))
        )
        running = session.scalar(
            select(func.count()).select_from(FlowRun).where(FlowRun.status == "active")
        )
    assert people == 300
    assert orders is not None
    assert orders > 0
    assert events is not None
    assert events > 300 * 5
    assert flows == 15
    assert running is not None
    assert running > 0

    server = start_server(url, tmp_path / "serve.log", worker=True)  # as `make run` serves
    try:
        response = httpx.post(
            f"{server.url}/v1/track",
            auth=(keys["write_key"], ""),
            json={
                "userId": "cliente-curl",
                "event": "Product Viewed",
                "properties": {"product_id": "p1", "price": "99.90"},
            },
        )
        assert response.status_code == 200
        headers = {"Authorization": f"Bearer {keys['secret_key']}"}
        contact = httpx.get(
            f"{server.url}/api/v1/contacts", params={"user_id": "cliente-curl"}, headers=headers
        ).json()["data"][0]
        timeline = httpx.get(
            f"{server.url}/api/v1/contacts/{contact['id']}/events", headers=headers
        ).json()["data"]
        assert [e["event"] for e in timeline] == ["Product Viewed"]
        home = httpx.get(server.url)
        assert home.status_code == 200
        assert "demo" in home.text
    finally:
        server.stop()
        database.dispose()
