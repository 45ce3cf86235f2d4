"""`jornada flows`, `jornada simulate` and `jornada templates` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from jornada.contacts import Contact
from jornada.db import Database
from tests.test_cli import jornada


def test_flows_install_apply_and_list(database_url: str, tmp_path: Path) -> None:
    """The library installs at version 1; an edited file becomes version 2; a bad file names its line."""
    assert jornada(database_url, "workspace", "create", "loja").returncode == 0
    installed = jornada(database_url, "flows", "install", "--workspace", "loja")
    assert installed.returncode == 0, installed.stderr
    assert installed.stderr.count("version 1") == 15
    mine = tmp_path / "meu-fluxo.yaml"
    mine.write_text(
        "key: meu-fluxo\nname: Meu fluxo\ntrigger: {event: Signed Up}\nsteps:\n"
        "  - id: oi\n    send: {channel: email, template: welcome-brand-story}\n"
    )
    assert (
        "version 1"
        in jornada(database_url, "flows", "apply", str(mine), "--workspace", "loja").stderr
    )
    mine.write_text(mine.read_text().replace("Meu fluxo", "Meu fluxo 2"))
    assert (
        "version 2"
        in jornada(database_url, "flows", "apply", str(mine), "--workspace", "loja").stderr
    )
    broken = tmp_path / "quebrado.yaml"
    broken.write_text(
        "key: quebrado\nname: Quebrado\ntrigger: {event: X}\nsteps:\n  - id: a\n    wait: amanhã\n"
    )
    result = jornada(database_url, "flows", "apply", str(broken), "--workspace", "loja")
    assert result.returncode == 1
    assert "quebrado.yaml:6: steps.0.wait" in result.stderr
    listing = jornada(database_url, "flows", "list", "--workspace", "loja").stderr
    assert "meu-fluxo" in listing
    assert "cart-abandonment" in listing


def test_simulate_library_prints_json_effects(tmp_path: Path) -> None:
    """`simulate --library --json`: one line per effect, in the documented shape."""
    events = tmp_path / "events.jsonl"
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text(
        json.dumps(
            {
                "userId": "ana",
                "traits": {
                    "email": "ana@loja.com",
                    "phone": "+5511987654321",
                    "consent": {"email_marketing": True},
                },
            }
        )
        + "\n"
    )
    events.write_text(
        json.dumps(
            {
                "userId": "ana",
                "event": "Checkout Started",
                "timestamp": "2026-11-03T10:00:00-03:00",
                "properties": {"value": "99.90"},
            }
        )
        + "\n"
    )
    result = jornada(
        "sqlite:///unused.db",
        "simulate",
        "--library",
        "--events",
        str(events),
        "--contacts",
        str(contacts),
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {
            "at": "2026-11-03T11:00:00-03:00",
            "flow": "cart-abandonment",
            "contact": "ana",
            "step": "email",
            "action": "send",
            "channel": "email",
            "template": "cart-abandonment-email",
            "detail": {"to": "ana@loja.com"},
        },
        {
            "at": "2026-11-03T11:00:00-03:00",
            "flow": "cart-abandonment",
            "contact": "ana",
            "step": "whatsapp",
            "action": "suppress",
            "channel": "whatsapp",
            "template": "cart-abandonment-whatsapp",
            "detail": {"reason": "no consent: whatsapp_marketing"},
        },
    ]


def test_simulate_rejects_a_bad_events_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"userId": "a", "event": "x", "timestamp": "2026-11-03T10:00:00Z"}\nnot json\n'
    )
    result = jornada(
        "sqlite:///unused.db", "simulate", "--library", "--events", str(events), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "events.jsonl:2: not JSON" in result.stderr


def test_templates_preview_and_lint(database: Database, database_url: str) -> None:
    """Preview renders for a real contact and names what fell back; lint counts contacts."""
    assert (
        jornada(
            database_url, "workspace", "create", "loja", "--url", "https://loja.test"
        ).returncode
        == 0
    )
    from jornada.ingest import accept_messages
    from jornada.workspaces import WorkspaceRef, get_workspace_by_name
    from tests.conftest import NOW

    with database.read() as session:
        ref = WorkspaceRef.of(get_workspace_by_name(session, "loja"))
    accept_messages(
        database,
        ref,
        [
            {"type": "identify", "userId": "u1", "traits": {"first_name": "Bia"}},
            {"type": "identify", "userId": "u2", "traits": {}},
        ],
        received_at=NOW,
    )
    with database.read() as session:
        bia = session.scalar(select(Contact.id).where(Contact.user_id == "u1"))
    preview = jornada(
        database_url,
        "templates",
        "preview",
        "welcome-brand-story",
        "--workspace",
        "loja",
        "--contact",
        str(bia),
    )
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith("Subject: Bem-vindo à loja\n")
    assert "Bia, que bom ter você aqui" in preview.stdout
    lint = jornada(database_url, "templates", "lint", "welcome-brand-story", "--workspace", "loja")
    assert "contact.traits.first_name" in lint.stderr
    assert "1 of 2" in lint.stderr
    unknown = jornada(
        database_url, "templates", "preview", "nope", "--workspace", "loja", "--contact", str(bia)
    )
    assert unknown.returncode == 1
    assert "no template 'nope'" in unknown.stderr


def test_docs_carry_the_current_flow_schema(tmp_path: Path) -> None:
    printed = jornada(f"sqlite:///{tmp_path / 'unused.db'}", "flows", "schema")
    assert printed.returncode == 0, printed.stderr
    committed = (Path(__file__).parents[2] / "docs" / "flow-schema.json").read_text()
    assert json.loads(printed.stdout) == json.loads(committed), (
        "docs/flow-schema.json is stale: jornada flows schema > docs/flow-schema.json"
    )
    assert "SegmentTrigger" in committed
    assert "DateTrigger" in committed
