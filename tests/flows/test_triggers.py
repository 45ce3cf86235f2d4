"""Triggers other than a plain event: dates, segments, score thresholds and manual enrolment.

Each runs through ingestion and the scheduler at exact virtual times, on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from jornada.cli import main
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import Conflict, NotFound
from jornada.flows import FlowRun, FlowRunStep, Runner, install
from jornada.flows.library import FlowDefinitionError, parse_flow
from jornada.ingest import accept_messages
from jornada.scheduler import tick
from tests.conftest import Shop

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # Tuesday 10:00 in São Paulo


def use(database: Database, shop: Shop, source: str) -> str:
    doc = parse_flow(source, "test.yaml")
    with database.write() as session:
        install(session, shop.ref.id, doc, now=T0)
    return doc.key


def send(database: Database, shop: Shop, at: datetime, *messages: dict[str, Any]) -> None:
    stamped = [{"timestamp": at.isoformat(), **m} for m in messages]
    result = accept_messages(database, shop.ref, stamped, received_at=at)
    assert result.rejected == []


def track(user: str, event: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "properties": properties}


def runs(database: Database, shop: Shop, key: str) -> list[FlowRun]:
    with database.read() as session:
        return list(
            session.scalars(
                select(FlowRun)
                .where(FlowRun.workspace_id == shop.ref.id, FlowRun.flow_key == key)
                .order_by(FlowRun.id)
            )
        )


def by_person(database: Database, shop: Shop, key: str, *users: str) -> list[FlowRun]:
    """The runs of ``key``, one per user, in the order the users are given."""
    found = {r.contact_id: r for r in runs(database, shop, key)}
    return [found[contact_id(database, shop, user)] for user in users]


def tagged_at(database: Database, run: FlowRun) -> list[datetime]:
    """When the run's `update` steps ran."""
    with database.read() as session:
        return list(
            session.scalars(
                select(FlowRunStep.at).where(
                    FlowRunStep.run_id == run.id, FlowRunStep.action == "update"
                )
            )
        )


def contact_id(database: Database, shop: Shop, user: str) -> str:
    with database.read() as session:
        found = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == user)
        )
    assert found is not None
    return found


BOLETO_EVE = """
key: boleto-eve
name: Véspera do boleto
trigger:
  date: prop.due_date
  event: Boleto Issued
  offset: -1d
  time: "09:00"
  unless: [Boleto Paid]
steps:
  - id: lembra
    update: {tag: lembrado}
"""


def test_date_trigger_on_an_event_property_starts_at_the_local_time(
    database: Database, shop: Shop
) -> None:
    key = use(database, shop, BOLETO_EVE)
    send(
        database,
        shop,
        T0,
        track("ana", "Boleto Issued", due_date="2026-11-06", amount="120.00"),
        track("bia", "Boleto Issued", due_date="2026-11-06", amount="80.00"),
    )
    ana, bia = by_person(database, shop, key, "ana", "bia")
    assert (ana.status, bia.status) == ("scheduled", "scheduled")
    starts = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)  # 09:00 in São Paulo, the day before
    assert ana.wake_at == starts
    send(database, shop, T0 + timedelta(days=1), track("bia", "Boleto Paid"))
    tick(database, starts - timedelta(minutes=1))
    assert [r.status for r in by_person(database, shop, key, "ana", "bia")] == [
        "scheduled",
        "cancelled",
    ]
    tick(database, starts)
    ana, bia = by_person(database, shop, key, "ana", "bia")
    assert ana.status == "completed"
    assert ana.entered_at == starts
    assert tagged_at(database, ana) == [starts]
    assert bia.end_reason == "cancelled:Boleto Paid"
    assert tagged_at(database, bia) == []


REACTIVATE = """
key: reactivate-30d
name: 30 dias sem comprar
trigger:
  date: fact.last_order_at
  offset: 30d
entry:
  reentry: always
steps:
  - id: marca
    update: {tag: reativar}
"""


def order(user: str, order_id: str) -> dict[str, Any]:
    return track(user, "Order Completed", order_id=order_id, total="100.00")


def test_date_trigger_on_a_contact_fact_moves_when_the_fact_changes(
    database: Database, shop: Shop
) -> None:
    key = use(database, shop, REACTIVATE)
    send(database, shop, T0, order("ana", "o1"))
    (run,) = runs(database, shop, key)
    assert (run.status, run.wake_at) == ("scheduled", T0 + timedelta(days=30))
    later = T0 + timedelta(days=10)
    send(database, shop, later, order("ana", "o2"))  # a new order: 30 days from this one
    (run,) = runs(database, shop, key)
    assert run.wake_at == later + timedelta(days=30)
    tick(database, T0 + timedelta(days=30))
    assert runs(database, shop, key)[0].status == "scheduled"
    tick(database, later + timedelta(days=30))
    (run,) = runs(database, shop, key)
    assert run.status == "completed"
    assert tagged_at(database, run) == [later + timedelta(days=30)]
    # an event that does not change the date schedules nothing new
    send(database, shop, later + timedelta(days=31), track("ana", "Product Viewed"))
    assert len(runs(database, shop, key)) == 1


SEGMENT_PRO = """
key: plano-pro
name: Entrou no plano pro
trigger:
  segment: plano-pro
  when: {on}
  where: {{trait: plan, eq: pro}}
entry:
  reentry: always
steps:
  - id: marca
    update: {{tag: pro-{on}}}
"""


def plan(user: str, value: str) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": {"plan": value}}


@pytest.mark.parametrize("on", ["entered", "exited"])
def test_segment_predicate_enrols_on_entering_or_leaving(
    database: Database, shop: Shop, on: str
) -> None:
    key = use(database, shop, SEGMENT_PRO.format(on=on).replace("key: plano-pro", f"key: pro-{on}"))
    send(database, shop, T0, plan("ana", "free"))
    send(database, shop, T0 + timedelta(hours=1), plan("ana", "pro"))
    send(database, shop, T0 + timedelta(hours=2), plan("ana", "pro"), track("ana", "Page Viewed"))
    send(database, shop, T0 + timedelta(hours=3), plan("ana", "free"))
    enrolled = [r.entered_at for r in runs(database, shop, key)]
    expected = T0 + timedelta(hours=1 if on == "entered" else 3)
    assert enrolled == [expected]  # staying inside (hour 2) is not entering again


def test_segment_event_trigger_reacts_to_its_own_segment_only(
    database: Database, shop: Shop
) -> None:
    key = use(
        database,
        shop,
        """
key: vip-welcome
name: Boas-vindas VIP
trigger: {segment: vip}
steps:
  - id: marca
    update: {tag: vip}
""",
    )
    send(
        database,
        shop,
        T0,
        track("ana", "Segment Entered", segment="vip"),
        track("bia", "Segment Entered", segment="inactive-30d"),
        track("caio", "Segment Exited", segment="vip"),
    )
    (run,) = runs(database, shop, key)
    assert run.contact_id == contact_id(database, shop, "ana")


def test_score_threshold_enrols_once_when_crossed(database: Database, shop: Shop) -> None:
    use(
        database,
        shop,
        """
key: pontos
name: Pontos por visita à página de preços
trigger: {event: Pricing Viewed}
entry: {reentry: always}
steps:
  - id: pontua
    score: 30
""",
    )
    key = use(
        database,
        shop,
        """
key: lead-quente
name: Lead passou de 50 pontos
trigger: {score_above: 50}
steps:
  - id: marca
    update: {tag: mql}
  - id: espera
    wait: 7d
""",
    )
    for hours in (0, 1, 2):
        send(database, shop, T0 + timedelta(hours=hours), track("ana", "Pricing Viewed"))
    (run,) = runs(database, shop, key)
    assert run.entered_at == T0 + timedelta(hours=1)  # 30 → 60 crosses 50; 60 → 90 does not
    assert run.vars["trigger"] == {"score": 60}


MANUAL = """
key: consultoria
name: Convite para consultoria
trigger: {manual: true}
entry:
  reentry: 30d
  if: {trait: plan, eq: pro}
steps:
  - id: marca
    update: {tag: convidado}
  - id: espera
    wait: 2d
"""


def test_manual_enrolment_follows_the_entry_rules(database: Database, shop: Shop) -> None:
    key = use(database, shop, MANUAL)
    send(database, shop, T0, plan("ana", "pro"), plan("bia", "free"))
    ana, bia = contact_id(database, shop, "ana"), contact_id(database, shop, "bia")
    with database.write() as session:
        run = Runner(session, shop.ref.id, T0).enrol(key, ana, {"origem": "vendas"})
        assert (run.status, run.vars["trigger"]) == ("active", {"origem": "vendas"})
    with database.write() as session, pytest.raises(Conflict, match="already in this flow"):
        Runner(session, shop.ref.id, T0).enrol(key, ana)
    with database.write() as session, pytest.raises(Conflict, match="entry filter"):
        Runner(session, shop.ref.id, T0).enrol(key, bia)
    with database.write() as session, pytest.raises(NotFound, match="no contact"):
        Runner(session, shop.ref.id, T0).enrol(key, "0" * 26)
    with database.write() as session, pytest.raises(NotFound, match="no active flow"):
        Runner(session, shop.ref.id, T0).enrol("nenhum", ana)
    tick(database, T0 + timedelta(days=2))
    with database.write() as session, pytest.raises(Conflict, match="re-entry is allowed from"):
        Runner(session, shop.ref.id, T0 + timedelta(days=3)).enrol(key, ana)
    assert len(runs(database, shop, key)) == 1


def test_manual_enrolment_over_http_and_cli(server_shop: Any) -> None:
    import httpx

    server, shop, db = server_shop
    key = use(db, shop, MANUAL)
    send(db, shop, T0, plan("ana", "pro"), plan("bia", "free"), plan("caio", "pro"))
    headers = {"Authorization": f"Bearer {shop.keys.secret_key}"}
    url = f"{server.url}/api/v1/flows/{key}/enrolments"
    ana = contact_id(db, shop, "ana")
    created = httpx.post(url, headers=headers, json={"contact_id": ana, "properties": {"a": 1}})
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "active"
    again = httpx.post(url, headers=headers, json={"contact_id": ana})
    assert again.status_code == 409
    assert again.json()["field"] == "contact_id"
    assert "already in this flow" in again.json()["message"]
    missing = httpx.post(url, headers=headers, json={})
    assert (missing.status_code, missing.json()["field"]) == (400, "contact_id")
    other = httpx.post(url, headers={"Authorization": "Bearer sk_wrong"}, json={"contact_id": ana})
    assert other.status_code == 401
    # the CLI does the same, for the shop's own workspace only
    caio = contact_id(db, shop, "caio")
    cli = CliRunner()
    env = {"JORNADA_DATABASE_URL": server.database_url}
    done = cli.invoke(
        main, ["flows", "enrol", key, "--workspace", shop.ref.name, "--contact", caio], env=env
    )
    assert done.exit_code == 0, done.output
    refused = cli.invoke(
        main,
        [
            "flows",
            "enrol",
            key,
            "--workspace",
            shop.ref.name,
            "--contact",
            contact_id(db, shop, "bia"),
        ],
        env=env,
    )
    assert refused.exit_code == 1
    assert "entry filter" in refused.output
    assert len(runs(db, shop, key)) == 2


PRICE_DROP = """
key: preco-baixou
name: Baixou o preço
trigger:
  price_drop: {min_percent: 10, viewed_within: 7d}
steps:
  - id: marca
    update: {tag: preco-baixou}
"""


@pytest.mark.parametrize("product", ["sku-1", 123])
def test_price_drop_enrols_recent_viewers_of_that_product(
    database: Database, shop: Shop, product: Any
) -> None:
    key = use(database, shop, PRICE_DROP)
    send(
        database,
        shop,
        T0,
        track("ana", "Product Viewed", product_id=product),
        track("bia", "Product Viewed", product_id="outro"),
    )
    send(
        database, shop, T0 - timedelta(days=8), track("caio", "Product Viewed", product_id=product)
    )
    update = track("catalog", "Product Updated", product_id=product, price="89.00")
    send(
        database,
        shop,
        T0 + timedelta(hours=1),
        {**update, "properties": {**update["properties"], "previous_price": "95.00"}},
    )
    assert runs(database, shop, key) == []  # 6%: under the flow's 10%
    send(
        database,
        shop,
        T0 + timedelta(hours=2),
        track(
            "catalog", "Product Updated", product_id=product, price="80.00", previous_price="100.00"
        ),
    )
    (run,) = runs(database, shop, key)
    assert run.contact_id == contact_id(database, shop, "ana")
    assert run.vars["trigger"]["price"] == "80.00"


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            "  date: fact.last_order_at\n  offset: banana",
            "f.yaml:5: trigger.offset: Value error, 'banana' is not a duration",
        ),
        ("  evnt: Foo", "f.yaml:4: trigger: a trigger starts with event, date, segment"),
        ("  event: Foo\n  repeat: {times: 1, within: 1d}", "f.yaml:5: trigger.repeat.times:"),
        ("  - event: Foo\n  - score_above: x", "f.yaml:5: trigger.1.score_above: Input should"),
        (
            "  segment: vip\n  on: entered",
            "f.yaml: trigger: write `when: entered` or `when: exited`",
        ),
    ],
)
def test_a_bad_trigger_is_named_by_its_own_line_and_path(trigger: str, message: str) -> None:
    source = f"key: x\nname: X\ntrigger:\n{trigger}\nsteps:\n  - id: a\n    wait: 1d\n"
    with pytest.raises(FlowDefinitionError) as caught:
        parse_flow(source, "f.yaml")
    assert str(caught.value).startswith(message), str(caught.value)
