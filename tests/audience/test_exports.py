"""Segment exports (CSV and hashed audience) through the CLI and the HTTP API."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from jornada.contacts import Contact
from jornada.db import Database
from jornada.ingest import accept_messages
from tests.conftest import NOW, Shop, make_shop
from tests.support.server import LiveServer
from tests.test_cli import jornada

# sha256 of "ana@loja.com" and of "5511987654321", computed outside Jornada (sha256sum)
ANA_EMAIL_SHA256 = "9931188e0342b5eb11fcc6d21c7121f04163e4180e53923b678e8383db55af4e"
ANA_PHONE_SHA256 = "029c7290f14c4516673508635f0519db95f7daf42057fd0e4ad1de84c5408a66"
DUDA_PHONE_SHA256 = hashlib.sha256(b"5531912345678").hexdigest()


def populate(database: Database, shop: Shop, now: datetime = NOW) -> None:
    """Four recurring customers: consent by e-mail, none, by WhatsApp with a phone only, and
    consent without any e-mail or phone."""

    def order(user: str, order_id: str, days: int) -> dict[str, Any]:
        return {
            "type": "track",
            "userId": user,
            "event": "Order Completed",
            "timestamp": (now - timedelta(days=days)).isoformat(),
            "properties": {"order_id": order_id, "total": "150.50"},
        }

    def identify(user: str, traits: dict[str, Any]) -> dict[str, Any]:
        at = (now - timedelta(days=40)).isoformat()
        return {"type": "identify", "userId": user, "timestamp": at, "traits": traits}

    messages = [
        identify(
            "ana",
            {
                "email": "  Ana@Loja.com ",
                "phone": "(11) 98765-4321",
                "first_name": "Ana",
                "consent": {"email_marketing": True},
            },
        ),
        identify("bia", {"email": "bia@loja.com", "phone": "+55 21 99876-5432"}),
        identify("duda", {"phone": "+55 31 91234-5678", "consent": {"whatsapp_marketing": True}}),
        identify("eli", {"first_name": "Eli", "consent": {"push_marketing": True}}),
    ]
    for user in ("ana", "bia", "duda", "eli"):
        messages += [order(user, f"{user}-1", 20), order(user, f"{user}-2", 10)]
    result = accept_messages(database, shop.ref, messages, received_at=now)
    assert result.rejected == [], result.rejected


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _check_csv(rows: list[dict[str, str]]) -> None:
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # by contact id
    assert {r["user_id"] for r in rows} == {"ana", "bia", "duda", "eli"}
    ana = next(r for r in rows if r["user_id"] == "ana")
    assert ana["email"] == "ana@loja.com"
    assert ana["phone"] == "+5511987654321"
    assert ana["first_name"] == "Ana"
    assert ana["orders_count"] == "2"
    assert ana["total_spent"] == "301.00"
    assert datetime.fromisoformat(ana["last_order_at"]).tzinfo is not None


def _check_audience(rows: list[dict[str, str]]) -> None:
    """ana (e-mail consent) and duda (WhatsApp consent, phone only); bia has no consent and eli
    no identifier."""
    assert list(rows[0]) == ["email_sha256", "phone_sha256"]
    assert sorted((r["email_sha256"], r["phone_sha256"]) for r in rows) == sorted(
        [
            (ANA_EMAIL_SHA256, ANA_PHONE_SHA256),
            ("", DUDA_PHONE_SHA256),
        ]
    )


def test_export_with_the_cli(database: Database, database_url: str, tmp_path: Path) -> None:
    """`segments export` to a file and to stdout; `segments list` shows the sizes."""
    # given
    shop = make_shop(database, "loja-export")
    populate(database, shop, now=datetime.now(UTC))
    neighbour = make_shop(database, "vizinha")
    populate(database, neighbour, now=datetime.now(UTC))
    out = tmp_path / "recurring.csv"
    # when
    to_file = jornada(
        database_url, "segments", "export", "recurring-customers", "--workspace", "loja-export",
        "--output", str(out),
    )  # fmt: skip
    audience = jornada(
        database_url, "segments", "export", "recurring-customers", "--workspace", "loja-export",
        "--format", "audience",
    )  # fmt: skip
    listing = jornada(database_url, "segments", "list", "--workspace", "loja-export")
    unknown = jornada(database_url, "segments", "export", "nope", "--workspace", "loja-export")
    # then
    assert to_file.returncode == 0, to_file.stderr
    assert "exported 4 rows" in to_file.stderr
    rows = _rows(out.read_text(encoding="utf-8"))
    _check_csv(rows)
    with database.read() as session:
        own = set(session.scalars(select(Contact.id).where(Contact.workspace_id == shop.ref.id)))
    assert {r["id"] for r in rows} <= own  # the neighbour's identical people stay out
    assert audience.returncode == 0, audience.stderr
    _check_audience(_rows(audience.stdout))
    assert listing.returncode == 0, listing.stderr
    assert "recurring-customers" in listing.stderr
    assert "rfm-champions" in listing.stderr
    assert unknown.returncode == 1
    assert "no segment with key 'nope'" in unknown.stderr


def test_export_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """`GET /segments/{key}/export` in both formats, per workspace; 404 and 400 as elsewhere."""
    server, shop, db = server_shop
    populate(db, shop, now=datetime.now(UTC))
    neighbour = make_shop(db)
    populate(db, neighbour, now=datetime.now(UTC))
    api = f"{server.url}/api/v1/segments"

    def get(path: str, who: Shop = shop, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {who.keys.secret_key}"}
        return httpx.get(f"{api}/{path}", params=params, headers=headers)

    plain = get("recurring-customers/export")
    audience = get("recurring-customers/export", format="audience")
    other = get("recurring-customers/export", who=neighbour)
    assert plain.status_code == audience.status_code == other.status_code == 200
    assert plain.headers["content-type"].startswith("text/csv")
    assert "attachment" in plain.headers["content-disposition"]
    _check_csv(_rows(plain.text))
    _check_audience(_rows(audience.text))
    assert {r["id"] for r in _rows(plain.text)}.isdisjoint({r["id"] for r in _rows(other.text)})
    assert get("nope/export").status_code == 404
    bad = get("b2b/export", format="xml")
    assert bad.status_code == 400
    assert bad.json()["field"] == "format"
    empty = get("b2b/export")
    header = "id,user_id,email,phone,first_name,orders_count,total_spent,last_order_at\n"
    assert empty.text == header
