"""The `jornada` command line, run as a user runs it: a subprocess with JORNADA_* variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select, text

from jornada.contacts import Contact
from jornada.db import Database
from jornada.workspaces import ApiKey


def jornada(
    database_url: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JORNADA_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "jornada", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_db_upgrade_then_workspace_create_json(tmp_path: Path) -> None:
    """`db upgrade` makes a database; `workspace create --json` prints id, name and both keys."""
    url = f"sqlite:///{tmp_path / 'new' / 'j.db'}"
    assert jornada(url, "db", "upgrade").returncode == 0
    result = jornada(url, "workspace", "create", "loja-da-ana", "--json")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == {"id", "name", "write_key", "secret_key"}
    assert created["name"] == "loja-da-ana"
    assert created["write_key"].startswith("wk_")
    assert created["secret_key"].startswith("sk_")
    database = Database(url)
    with database.read() as session:
        stored = [k.key_hash for k in session.scalars(select(ApiKey))]
        dump = "\n".join(str(r) for r in session.execute(text("SELECT * FROM api_keys")))
    database.dispose()
    assert len(stored) == 2
    assert created["write_key"] not in dump
    assert created["secret_key"] not in dump


def test_workspace_create_errors_are_one_clear_line(database_url: str) -> None:
    """A duplicate or malformed name is reported without a traceback, exit code 1."""
    assert jornada(database_url, "workspace", "create", "loja").returncode == 0
    duplicate = jornada(database_url, "workspace", "create", "loja")
    assert duplicate.returncode == 1
    assert "workspace 'loja' already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    bad = jornada(database_url, "workspace", "create", "Loja Da Ana")
    assert bad.returncode == 1
    assert "(name)" in bad.stderr


def test_import_csv_contacts_reports_bad_rows_and_keeps_the_rest(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    """A contact list with one bad email imports the other rows; the bad one is named by line."""
    assert jornada(database_url, "workspace", "create", "loja").returncode == 0
    csv = tmp_path / "clientes.csv"
    csv.write_text(
        "Nome,E-mail,Celular,Aceita e-mail\n"
        "Ana Souza,ana@exemplo.com.br,(11) 98765-4321,sim\n"
        "Bruno Lima,bruno-sem-arroba,,não\n"
        "Carla Dias,carla@exemplo.com.br,21 99876-5432,\n",
        encoding="utf-8",
    )
    args = [
        "import",
        "csv",
        "contacts",
        str(csv),
        "--workspace",
        "loja",
        "--map",
        "Nome=name",
        "--map",
        "E-mail=email",
        "--map",
        "Celular=phone",
        "--map",
        "Aceita e-mail=consent.email_marketing",
    ]
    first = jornada(database_url, *args)
    assert first.returncode == 0, first.stderr
    assert "clientes.csv:3: traits.email" in first.stderr
    again = jornada(database_url, *args)
    assert "imported 0 events (2 already there)" in again.stderr
    with database.read() as session:
        contacts = {c.email: c for c in session.scalars(select(Contact))}
    assert set(contacts) == {"ana@exemplo.com.br", "carla@exemplo.com.br"}
    ana = contacts["ana@exemplo.com.br"]
    assert ana.phone == "+5511987654321"
    assert ana.traits["name"] == "Ana Souza"
    assert ana.consent["email_marketing"]["granted"] is True
    assert ana.consent["email_marketing"]["source"] == "csv import clientes.csv"
    assert contacts["carla@exemplo.com.br"].consent["email_marketing"]["granted"] is False


def test_import_csv_unknown_column_is_refused(database_url: str, tmp_path: Path) -> None:
    assert jornada(database_url, "workspace", "create", "loja").returncode == 0
    csv = tmp_path / "c.csv"
    csv.write_text("email\na@b.com\n")
    result = jornada(
        database_url,
        "import",
        "csv",
        "contacts",
        str(csv),
        "--workspace",
        "loja",
        "--map",
        "Email=email",
    )
    assert result.returncode == 1
    assert "no column 'Email'" in result.stderr


def test_import_into_missing_workspace_is_refused(database_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "c.csv"
    csv.write_text("email\na@b.com\n")
    result = jornada(
        database_url,
        "import",
        "csv",
        "contacts",
        str(csv),
        "--workspace",
        "nada",
        "--map",
        "email=email",
    )
    assert result.returncode == 1
    assert "no workspace named 'nada'" in result.stderr


def test_a_bad_setting_is_named(tmp_path: Path) -> None:
    """A wrong JORNADA_* value is named in the error, not silently ignored."""
    env = {
        **os.environ,
        "JORNADA_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "JORNADA_SQLITE_SYNCHRONOUS": "SOMETIMES",
    }
    result = subprocess.run(
        [sys.executable, "-m", "jornada", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "JORNADA_SQLITE_SYNCHRONOUS" in result.stderr
    assert "Traceback" not in result.stderr
