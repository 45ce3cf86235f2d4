"""Provider settings per workspace: stored encrypted, validated field by field, via CLI and API."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, text

from jornada.channels.models import ChannelProvider, IntegrationIncident, Message
from jornada.channels.providers import (
    Keyring,
    get_provider,
    key_file,
    list_providers,
    set_provider,
    unset_provider,
)
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.workspaces import Workspace
from tests.conftest import Shop
from tests.support.server import LiveServer
from tests.test_cli import jornada

NOW = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)
KEYS = Keyring("the-first-secret-of-this-server")
PASSWORD = "correct-horse-battery-staple"


def configure(database: Database, shop: Shop, **overrides: Any) -> None:
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            "email",
            options={
                "url": f"smtp://ana:{PASSWORD}@smtp.loja.test:587",
                "from": "loja@loja.test",
                **overrides,
            },
            now=NOW,
            keys=KEYS,
        )


def test_the_password_is_stored_encrypted_and_read_back(database: Database, shop: Shop) -> None:
    """The raw row holds no secret; get_provider decrypts it; another key cannot."""
    # when
    configure(database, shop)
    # then
    with database.read() as session:
        raw = "\n".join(str(r) for r in session.execute(text("SELECT * FROM channel_providers")))
        config = get_provider(session, shop.ref.id, "email", keys=KEYS)
    assert PASSWORD not in raw
    assert "smtp.loja.test" in raw  # options are not secret
    assert config is not None
    assert config.secrets == {"password": PASSWORD}
    assert dict(config.options) == {
        "host": "smtp.loja.test",
        "port": 587,
        "username": "ana",
        "security": "starttls",
        "from": "loja@loja.test",
        "reply_to": None,
    }
    assert PASSWORD not in repr(config)
    assert PASSWORD not in json.dumps(config.view(), default=str)
    assert config.view()["summary"] == (
        "smtp://ana:****@smtp.loja.test:587 (starttls) from loja@loja.test"
    )
    with database.read() as session, pytest.raises(InvalidInput) as error:
        get_provider(session, shop.ref.id, "email", keys=Keyring("some-other-secret-entirely"))
    assert error.value.field == "JORNADA_SECRET_KEY"


def test_secrets_left_out_are_kept_and_null_removes_them(database: Database, shop: Shop) -> None:
    """Changing the sender does not need the password again."""
    configure(database, shop)
    with database.write() as session:
        set_provider(
            session,
            shop.ref.id,
            "email",
            options={"host": "smtp.loja.test", "username": "ana", "from": "vendas@loja.test"},
            now=NOW,
            keys=KEYS,
        )
        kept = get_provider(session, shop.ref.id, "email", keys=KEYS)
        assert kept is not None
        assert (kept.options["from"], kept.secrets) == ("vendas@loja.test", {"password": PASSWORD})
        with pytest.raises(InvalidInput) as error:
            set_provider(
                session,
                shop.ref.id,
                "email",
                options={"host": "smtp.loja.test", "username": "ana", "from": "v@loja.test"},
                secrets={"password": None},
                now=NOW,
                keys=KEYS,
            )
        assert error.value.field == "secrets.password"
        assert unset_provider(session, shop.ref.id, "email")
        assert not unset_provider(session, shop.ref.id, "email")
        assert list_providers(session, shop.ref.id, keys=KEYS) == []


@pytest.mark.parametrize(
    ("_case", "channel", "options", "field"),
    [
        ("unknown channel", "fax", {}, "channel"),
        ("sms without its Twilio account", "sms", {}, "options.account_sid"),
        ("http URL", "email", {"url": "http://smtp.loja.test", "from": "a@b.c"}, "smtp_url"),
        ("no host", "email", {"url": "smtp://", "from": "a@b.c"}, "smtp_url"),
        ("no sender", "email", {"url": "smtp://smtp.loja.test"}, "options.from"),
        ("bad sender", "email", {"url": "smtp://h", "from": "loja"}, "options.from"),
        ("bad port", "email", {"host": "h", "port": 70000, "from": "a@b.c"}, "options.port"),
        (
            "bad security",
            "email",
            {"host": "h", "security": "ssl3", "from": "a@b.c"},
            "options.security",
        ),
        (
            "user without password",
            "email",
            {"url": "smtp://ana@h", "from": "a@b.c"},
            "secrets.password",
        ),
        (
            "half a DKIM",
            "email",
            {"host": "h", "from": "a@b.c", "dkim_selector": "s"},
            "options.dkim_domain",
        ),
        (
            "unknown option",
            "email",
            {"host": "h", "from": "a@b.c", "colour": "red"},
            "options.colour",
        ),
    ],
)
def test_bad_settings_name_the_field(
    database: Database, shop: Shop, _case: str, channel: str, options: dict[str, Any], field: str
) -> None:
    with database.write() as session:
        with pytest.raises(InvalidInput) as error:
            set_provider(session, shop.ref.id, channel, options=options, now=NOW, keys=KEYS)
        assert error.value.field == field
        assert list_providers(session, shop.ref.id, keys=KEYS) == []


def test_migration_0006_matches_the_models(database: Database) -> None:
    """The tables of migration 0006 are exactly what the ORM declares, on both databases."""
    mine = MetaData()
    tables = (ChannelProvider, IntegrationIncident, Message, Workspace)  # workspaces: the FK target
    for table in (t.__table__ for t in tables):
        table.to_metadata(mine)  # type: ignore[attr-defined]
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [
            d
            for d in compare_metadata(context, mine)
            if not (
                d[0] == "remove_table"
                or (d[0] == "remove_index" and d[1].table.name not in mine.tables)
            )
        ]
    assert diff == []


def test_cli_set_list_unset_never_prints_the_password(tmp_path: Path) -> None:
    """`channels set email` stores it; `list` shows it masked; the key file is 0600 beside the DB."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    set_ = jornada(
        url,
        "channels",
        "set",
        "email",
        "--workspace",
        "loja",
        "--smtp-url",
        f"smtp://ana:{PASSWORD}@smtp.loja.test:2525",
        "--from",
        "Loja <loja@loja.test>",
        "--no-starttls",
    )
    assert set_.returncode == 0, set_.stderr
    assert PASSWORD not in set_.stdout + set_.stderr
    assert "smtp://ana:****@smtp.loja.test:2525 (none) from Loja <loja@loja.test>" in set_.stderr
    secret = key_file(url)
    assert secret == tmp_path / "var" / "secret.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    listed = jornada(url, "channels", "list", "--workspace", "loja")
    assert listed.returncode == 0, listed.stderr
    assert PASSWORD not in listed.stdout + listed.stderr
    assert "smtp://ana:****@smtp.loja.test:2525" in listed.stderr
    assert "sandbox" in listed.stderr  # the other channels
    as_json = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    assert as_json[0]["secrets"] == {"password": "********"}
    assert as_json[0]["options"]["port"] == 2525
    # a restart (a new process) reads the same key: the secret still decrypts
    assert jornada(url, "channels", "list", "--workspace", "loja").returncode == 0
    bad = jornada(
        url,
        "channels",
        "set",
        "email",
        "--workspace",
        "loja",
        "--smtp-url",
        "http://x",
        "--from",
        "a@b.c",
    )
    assert bad.returncode == 1
    assert "error (smtp_url): the SMTP URL must start with smtp:// or smtps://" in bad.stderr
    assert jornada(url, "channels", "unset", "email", "--workspace", "loja").returncode == 0
    again = jornada(url, "channels", "unset", "email", "--workspace", "loja")
    assert again.returncode == 1
    assert "no provider is set for email" in again.stderr


def test_admin_api_secrets_are_write_only(server_shop: tuple[LiveServer, Shop, Database]) -> None:
    """PUT takes the password; no answer contains it; DELETE goes back to the sandbox."""
    live, shop, database = server_shop
    client = httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {shop.keys.secret_key}"}, timeout=10
    )
    with client:
        assert client.get("/api/v1/channels").json() == {"data": []}
        put = client.put(
            "/api/v1/channels/email",
            json={
                "options": {
                    "host": "smtp.loja.test",
                    "port": 465,
                    "security": "tls",
                    "username": "ana",
                    "from": "loja@loja.test",
                },
                "secrets": {"password": PASSWORD},
            },
        )
        assert put.status_code == 200, put.text
        listed = client.get("/api/v1/channels")
        health = client.get("/api/v1/health/integrations")
        bad = client.put("/api/v1/channels/email", json={"options": {"host": "h"}})
        deleted = client.delete("/api/v1/channels/email")
        missing = client.delete("/api/v1/channels/email")
    for answer in (put, listed):
        assert PASSWORD not in answer.text
    (view,) = listed.json()["data"]
    assert view["secrets"] == {"password": "********"}
    assert view["summary"] == "smtps://ana:****@smtp.loja.test:465 (tls) from loja@loja.test"
    assert health.json() == {
        "channels": [
            {"channel": "email", "provider": "smtp", "status": "ok", "queued": 0, "incident": None}
        ],
        "incidents": [],
    }
    assert (bad.status_code, bad.json()["field"]) == (400, "options.from")
    assert deleted.status_code == 204
    assert missing.status_code == 404
    assert httpx.get(f"{live.url}/api/v1/channels", timeout=10).status_code == 401
    with database.read() as session:
        raw = "\n".join(str(r) for r in session.execute(text("SELECT * FROM channel_providers")))
    assert raw == ""
