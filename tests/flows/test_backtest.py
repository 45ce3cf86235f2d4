"""`jornada simulate --workspace NAME --from --to`: replay stored history through flows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jornada.db import Database
from jornada.ingest import accept_messages
from tests.conftest import Shop
from tests.test_cli import jornada

T0 = datetime(2026, 10, 6, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo


def backtest(database_url: str, workspace: str, *args: str) -> list[dict[str, Any]]:
    done = jornada(database_url, "simulate", "--workspace", workspace, *args, "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_backtest_counts_what_the_library_would_have_done_per_day(
    database: Database, database_url: str, shop: Shop
) -> None:
    """Three abandoned checkouts, one bought within the hour: two emails, one conversion."""
    messages: list[dict[str, Any]] = []
    for n, consent in enumerate([True, True, False]):
        user = f"c{n}"
        messages += [
            {
                "type": "identify",
                "userId": user,
                "timestamp": T0.isoformat(),
                "traits": {"email": f"{user}@loja.com", "consent": {"email_marketing": consent}},
            },
            {
                "type": "track",
                "userId": user,
                "event": "Checkout Started",
                "timestamp": T0.isoformat(),
                "properties": {"value": "120.00"},
            },
        ]
    messages.append(
        {
            "type": "track",
            "userId": "c1",
            "event": "Order Completed",
            "timestamp": (T0 + timedelta(minutes=30)).isoformat(),
            "properties": {"order_id": "o1", "total": "120.00"},
        }
    )
    # history arrives as an import: it builds profiles and starts no flow
    accept_messages(database, shop.ref, messages, received_at=T0, trigger_flows=False)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=2)
    rows = backtest(
        database_url,
        shop.ref.name,
        "--library",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
    )
    cart = {(r["step"], r["action"]): r["count"] for r in rows if r["flow"] == "cart-abandonment"}
    assert cart[("email", "send:email")] == 1  # c0: consent, no order
    assert cart[("email", "suppress:email")] == 1  # c2: no consent
    assert cart[(None, "converted")] == 1  # c1 bought within the hour
    assert {r["day"] for r in rows if r["flow"] == "cart-abandonment"} == {"2026-10-06"}


def test_backtest_on_the_imported_olist_history(olist_sample: Path, tmp_path: Path) -> None:
    """A month of real Olist orders through the library: post-purchase and NPS runs, day by day."""
    url = f"sqlite:///{tmp_path / 'olist.db'}"
    assert jornada(url, "workspace", "create", "olist").returncode == 0
    imported = jornada(url, "import", "olist", str(olist_sample), "--workspace", "olist")
    assert imported.returncode == 0, imported.stderr
    rows = backtest(url, "olist", "--library", "--from", "2018-03-01", "--to", "2018-03-31")
    flows = {r["flow"] for r in rows}
    assert {"post-purchase", "nps-after-delivery"} <= flows
    days = sorted({r["day"] for r in rows})
    assert days[0] >= "2018-02-28"  # days are local: 00:00 UTC on the 1st is the 28th in São Paulo
    assert days[-1] <= "2018-03-31"
    assert len(days) > 20  # orders every day of the month
    # Olist customers have no e-mail or consent in Jornada: messages are suppressed, with reasons
    marketing_sent = [
        r for r in rows if r["action"].startswith("send:") and r["flow"] == "win-back"
    ]
    assert marketing_sent == []
    assert sum(r["count"] for r in rows if r["action"].startswith("suppress:")) > 0
