"""Lead scoring end to end: events through ingestion, scores with reasons, thresholds, flows, API.

Storage tests run on SQLite and PostgreSQL; the HTTP tests on a live `jornada serve`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from sqlalchemy import func, select

from jornada.audience import install_model, recheck_scores, refresh_score, score_view
from jornada.audience.scoring import LeadScoreReason, ScoringModelVersion
from jornada.cli import main
from jornada.contacts import Contact
from jornada.db import Database
from jornada.events.models import Event
from jornada.flows import FlowRun, install
from jornada.flows.library import parse_flow
from jornada.ingest import accept_messages
from tests.conftest import Shop, make_shop
from tests.support.server import LiveServer

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUS = "\u2212"


def send(database: Database, shop: Shop, at: datetime, *messages: dict[str, Any]) -> None:
    stamped = [{"timestamp": at.isoformat(), **m} for m in messages]
    result = accept_messages(database, shop.ref, stamped, received_at=at)
    assert result.rejected == []


def track(user: str, event: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "properties": properties}


def page(user: str, path: str) -> dict[str, Any]:
    return {"type": "page", "userId": user, "name": "Preços", "properties": {"path": path}}


def identify(user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits}


def contact(database: Database, shop: Shop, user: str) -> Contact:
    with database.read() as session:
        found = session.scalar(
            select(Contact).where(Contact.workspace_id == shop.ref.id, Contact.user_id == user)
        )
    assert found is not None
    return found


def view(database: Database, shop: Shop, user: str, now: datetime) -> dict[str, Any]:
    with database.write() as session:
        cid = contact(database, shop, user).id
        refresh_score(session, shop.ref.id, cid, now)
        return score_view(session, shop.ref.id, cid)


def score_events(database: Database, shop: Shop, user: str) -> list[dict[str, Any]]:
    cid = contact(database, shop, user).id
    with database.read() as session:
        return [
            e.properties
            for e in session.scalars(
                select(Event)
                .where(
                    Event.workspace_id == shop.ref.id,
                    Event.contact_id == cid,
                    Event.event == "Score Changed",
                )
                .order_by(Event.id)
            )
        ]


def test_events_change_the_score_with_reasons_newest_first(database: Database, shop: Shop) -> None:
    """A B2B lead views pricing three times, adds to cart and starts checkout: every point has
    its reason, the newest first, and they add up to the score."""
    # given / when
    send(database, shop, T0, identify("ana", cnpj="12.345.678/0001-90", email="ana@empresa.com.br"))
    for n in range(3):
        send(database, shop, T0 + n * HOUR, page("ana", "/precos/atacado"))
    send(database, shop, T0 + 4 * HOUR, track("ana", "Product Added", product_id="p1", price=50))
    send(database, shop, T0 + 5 * HOUR, track("ana", "Checkout Started", value=50))
    send(database, shop, T0 + 5 * HOUR, track("ana", "Order Shipped", order_id="x"))  # no rule
    # then
    score = view(database, shop, "ana", T0 + 5 * HOUR)
    assert score["score"] == 20 + 30 + 5 + 15 == contact(database, shop, "ana").score
    assert (score["fit"], score["engagement"], score["adjustments"]) == (20, 50, 0)
    assert [(r["points"], r["reason"], r["rule"]) for r in score["reasons"]] == [
        (15, "+15 started checkout", "checkout-started"),
        (5, "+5 added to cart", "added-to-cart"),
        (30, "+30 viewed pricing 3x in 2 days", "pricing-pages"),
        (20, "+20 company with a tax id (CNPJ)", "b2b-cnpj"),
    ]
    assert score["reasons"][0]["at"] == T0 + 5 * HOUR
    assert score["model_version"] == 0
    assert [t["name"] for t in score["thresholds"]] == ["MQL"]
    assert score["next_threshold"] == {"name": "SQL", "score": 100, "stage": "Qualified"}


def test_a_threshold_emits_score_changed_and_moves_the_stage(
    database: Database, shop: Shop
) -> None:
    """Crossing MQL (50) upwards: a Score Changed event and the stage Engaged; decay below it
    later: a Score Changed going down, found by the re-check, and the stage stays."""
    # given
    send(database, shop, T0, identify("bia", cnpj="1"))
    # when
    send(database, shop, T0, *(page("bia", "/precos") for _ in range(3)))
    # then
    assert score_events(database, shop, "bia") == [
        {
            "score": 50,
            "previous": 20,
            "threshold": "MQL",
            "threshold_score": 50,
            "direction": "up",
            "stage": "Engaged",
        }
    ]
    assert contact(database, shop, "bia").stage == "Engaged"
    # when: the engagement decays; the re-check runs when the score falls below 50
    with database.read() as session:
        assert recheck_scores(session, T0 + HOUR) == 0  # nothing due yet
    with database.write() as session:
        rechecked = recheck_scores(session, T0 + 2 * timedelta(days=1))
    # then
    assert rechecked == 1
    events = score_events(database, shop, "bia")
    assert [(e["threshold"], e["direction"], e["previous"]) for e in events] == [
        ("MQL", "up", 20),
        ("MQL", "down", 50),
    ]
    bia = contact(database, shop, "bia")
    assert bia.score < 50
    assert bia.stage == "Engaged"  # never backwards
    reasons = view(database, shop, "bia", T0 + 2 * timedelta(days=1))["reasons"]
    assert reasons[0]["rule"] == "decay"
    assert reasons[0]["reason"] == f"{MINUS}{50 - bia.score} decay"


def test_a_stage_never_moves_backwards_or_away_from_won(database: Database, shop: Shop) -> None:
    send(database, shop, T0, identify("caio", cnpj="1"), identify("dani", cnpj="2"))
    with database.write() as session:
        for user, stage in (("caio", "Qualified"), ("dani", "Won")):
            row = session.get(Contact, contact(database, shop, user).id)
            assert row is not None
            row.stage = stage
    send(database, shop, T0, *(page(u, "/precos") for u in ("caio", "dani") for _ in range(3)))
    assert contact(database, shop, "caio").stage == "Qualified"
    assert contact(database, shop, "dani").stage == "Won"
    assert [e["threshold"] for e in score_events(database, shop, "dani")] == ["MQL"]


def test_a_score_above_flow_enrols_when_lead_scoring_crosses_it(
    database: Database, shop: Shop
) -> None:
    """Lead-score changes reach flows: crossing `score_above: 40` enrols once."""
    doc = parse_flow(
        """
key: lead-quente
name: Lead quente
trigger: {score_above: 40}
steps:
  - id: marca
    update: {tag: quente}
""",
        "test.yaml",
    )
    with database.write() as session:
        install(session, shop.ref.id, doc, now=T0)
    send(database, shop, T0, track("eva", "Checkout Started", value=10))  # 15
    send(database, shop, T0 + HOUR, track("eva", "Checkout Started", value=10))  # 30
    send(database, shop, T0 + 2 * HOUR, track("eva", "Form Submitted", form_id="orcamento-b2b"))
    send(database, shop, T0 + 3 * HOUR, track("eva", "Form Submitted", form_id="orcamento-b2b"))
    with database.read() as session:
        runs = list(session.scalars(select(FlowRun).where(FlowRun.workspace_id == shop.ref.id)))
    eva = contact(database, shop, "eva")
    assert eva.score == 30 + 30 + 30
    assert [(r.flow_key, r.contact_id, r.entered_at) for r in runs] == [
        ("lead-quente", eva.id, T0 + 2 * HOUR)
    ]
    assert runs[0].vars["trigger"] == {"score": 60}
    assert "quente" in eva.tags


def test_a_workspace_model_replaces_the_default_and_keeps_versions(
    database: Database, shop: Shop
) -> None:
    """PUT-like install: a new version scores from then on; the same document keeps its version;
    another workspace still uses the default."""
    neighbour = make_shop(database)
    model = {
        "name": "Só checkout",
        "half_life": None,
        "engagement": [
            {"key": "co", "label": "checkout", "event": "Checkout Started", "points": 7}
        ],
        "thresholds": [{"name": "Quente", "score": 14, "stage": "Contacted"}],
    }
    with database.write() as session:
        first, created = install_model(session, shop.ref.id, model, now=T0)
        again, created_again = install_model(session, shop.ref.id, model, now=T0)
        second, _ = install_model(session, shop.ref.id, {**model, "name": "v2"}, now=T0)
    assert (first.version, created, again.version, created_again, second.version) == (
        1,
        True,
        1,
        False,
        2,
    )
    for ws in (shop, neighbour):
        send(database, ws, T0, track("fabi", "Checkout Started"), track("fabi", "Checkout Started"))
    mine, theirs = contact(database, shop, "fabi"), contact(database, neighbour, "fabi")
    assert (mine.score, mine.stage) == (14, "Contacted")
    assert (theirs.score, theirs.stage) == (30, "New")
    with database.read() as session:
        versions = session.scalars(
            select(ScoringModelVersion.version)
            .where(ScoringModelVersion.workspace_id == shop.ref.id)
            .order_by(ScoringModelVersion.version)
        ).all()
        foreign = session.scalar(
            select(func.count())
            .select_from(LeadScoreReason)
            .where(
                LeadScoreReason.workspace_id == neighbour.ref.id,
                LeadScoreReason.contact_id == mine.id,
            )
        )
    assert list(versions) == [1, 2]
    assert foreign == 0


def test_events_no_rule_listens_to_leave_no_score_state(database: Database, shop: Shop) -> None:
    send(
        database,
        shop,
        T0,
        track("gil", "Order Shipped", order_id="1"),
        identify("gil", city="Recife"),
    )
    with database.read() as session:
        reasons = session.scalar(
            select(func.count())
            .select_from(LeadScoreReason)
            .where(LeadScoreReason.workspace_id == shop.ref.id)
        )
    assert reasons == 0
    assert contact(database, shop, "gil").score == 0


# -- HTTP ------------------------------------------------------------------------------------
def test_score_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """GET the score with its reasons newest first; another workspace's contact is a 404."""
    server, shop, db = server_shop
    neighbour = make_shop(db)
    now = datetime.now(UTC)
    send(db, shop, now, identify("hugo", cnpj="1"))
    send(db, shop, now, track("hugo", "Product Viewed", product_id="p1"))
    hugo = contact(db, shop, "hugo").id
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    other = {"Authorization": f"Bearer {neighbour.keys.secret_key}"}
    # when
    mine = httpx.get(f"{server.url}/api/v1/contacts/{hugo}/score", headers=headers)
    theirs = httpx.get(f"{server.url}/api/v1/contacts/{hugo}/score", headers=other)
    anonymous = httpx.get(f"{server.url}/api/v1/contacts/{hugo}/score")
    # then
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["score"] == 22
    assert [(r["points"], r["reason"]) for r in body["reasons"]] == [
        (2, "+2 viewed a product"),
        (20, "+20 company with a tax id (CNPJ)"),
    ]
    assert set(body["reasons"][0]) == {"points", "reason", "rule", "at"}
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "not_found"
    assert anonymous.status_code == 401


def test_scoring_model_over_http(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """GET shows the default; PUT validates (400 naming the field), versions, and takes effect."""
    server, shop, db = server_shop
    api = f"{server.url}/api/v1/scoring"
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    model = {
        "name": "Atacado",
        "engagement": [{"key": "v", "label": "viewed", "event": "Product Viewed", "points": 9}],
    }
    # when
    before = httpx.get(api, headers=headers)
    bad = httpx.put(api, headers=headers, json={**model, "half_life": "logo"})
    created = httpx.put(api, headers=headers, json=model)
    same = httpx.put(api, headers=headers, json=model)
    after = httpx.get(api, headers=headers)
    # then
    assert before.status_code == 200
    assert (before.json()["version"], before.json()["default"]) == (0, True)
    assert before.json()["model"]["thresholds"][0]["name"] == "MQL"
    assert bad.status_code == 400
    assert bad.json()["field"] == "half_life"
    assert bad.json()["code"] == "invalid_scoring_model"
    assert (created.status_code, created.json()["version"]) == (201, 1)
    assert (same.status_code, same.json()["version"]) == (200, 1)
    assert after.json()["version"] == 1
    assert [v["version"] for v in after.json()["versions"]] == [1]
    send(db, shop, datetime.now(UTC), track("iris", "Product Viewed", product_id="p"))
    assert contact(db, shop, "iris").score == 9


def test_score_cli(server_shop: tuple[LiveServer, Shop, Database], tmp_path: Path) -> None:
    """`jornada score apply` installs a model (a mistake names its field); `score explain` shows
    the reasons; `score recheck` runs."""
    server, shop, db = server_shop
    cli, env = CliRunner(), {"JORNADA_DATABASE_URL": server.database_url}
    good, bad = tmp_path / "model.yaml", tmp_path / "bad.yaml"
    good.write_text(
        "name: CLI\nengagement:\n"
        "  - {key: v, label: viewed a product, event: Product Viewed, points: 4}\n"
    )
    bad.write_text("name: CLI\nthresholds:\n  - {name: X, score: 5, stage: Won}\n")
    applied = cli.invoke(main, ["score", "apply", str(good), "--workspace", shop.ref.name], env=env)
    refused = cli.invoke(main, ["score", "apply", str(bad), "--workspace", shop.ref.name], env=env)
    send(db, shop, datetime.now(UTC), track("joao", "Product Viewed", product_id="p"))
    joao = contact(db, shop, "joao").id
    explained = cli.invoke(main, ["score", "explain", joao, "--workspace", shop.ref.name], env=env)
    rechecked = cli.invoke(main, ["score", "recheck", "--workspace", shop.ref.name], env=env)
    assert applied.exit_code == 0, applied.output
    assert "installed as version 1" in applied.output
    assert refused.exit_code == 1
    assert "thresholds[0].stage" in refused.output
    assert explained.exit_code == 0, explained.output
    assert "score 4" in explained.output
    assert "+4 viewed a product" in explained.output
    assert rechecked.exit_code == 0, rechecked.output
