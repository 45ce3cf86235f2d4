"""Fixtures shared by the whole suite: databases on SQLite and PostgreSQL, workspaces, live servers."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from jornada.db import Database
from jornada.migrations import upgrade
from jornada.workspaces import CreatedWorkspace, WorkspaceRef, create_workspace
from tests.support.postgres import Cluster, find_bindir, start_cluster
from tests.support.server import LiveServer, start_server

OLIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "olist"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)


def pytest_report_header() -> list[str]:
    bindir = find_bindir()
    return [
        f"postgresql: {bindir or 'NOT FOUND - PostgreSQL tests will be skipped'}",
        f"olist sample: {OLIST_DIR if OLIST_DIR.exists() else 'NOT FOUND - Olist tests skipped'}",
    ]


# -- PostgreSQL -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found: the PostgreSQL tests cannot run"
        if IN_CI:
            pytest.fail(message + " (CI must run them)")
        pytest.skip(message)
    cluster = start_cluster(bindir)
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE jornada_template")
    upgrade(cluster.url("jornada_template"))
    yield cluster
    cluster.stop()


def _new_pg_database(cluster: Cluster) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE jornada_template")
    return cluster.url(name)


# -- SQLite ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "jornada.db"
    upgrade(f"sqlite:///{path}")
    return path


def new_sqlite_database(template: Path, directory: Path) -> str:
    path = directory / f"{uuid.uuid4().hex[:12]}.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated, empty database for this test, on each backend in turn."""
    if request.param == "sqlite":
        return new_sqlite_database(request.getfixturevalue("sqlite_template"), tmp_path)
    return _new_pg_database(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


@dataclass
class Shop:
    """A workspace and its keys, as a test uses them."""

    ref: WorkspaceRef
    keys: CreatedWorkspace


def make_shop(database: Database, name: str | None = None) -> Shop:
    with database.write() as session:
        created = create_workspace(session, name or f"shop-{uuid.uuid4().hex[:8]}", now=NOW)
    return Shop(WorkspaceRef(created.id, created.name, "America/Sao_Paulo", "BRL"), created)


@pytest.fixture
def shop(database: Database) -> Shop:
    return make_shop(database)


# -- data --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def olist_sample() -> Path:
    """The real Olist sample; skipped with a message where it is missing, a failure in CI."""
    sample = OLIST_DIR / "consistent_sample"
    if not sample.exists():
        message = f"the Olist sample is not at {sample}: the Olist tests cannot run"
        if IN_CI:
            pytest.fail(message + " (CI must run them)")
        pytest.skip(message)
    return sample


# -- live servers --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[LiveServer]:
    """`jornada serve` on SQLite, shared by the session; tests isolate themselves by workspace."""
    directory = tmp_path_factory.mktemp("live")
    server = start_server(new_sqlite_database(sqlite_template, directory), directory / "serve.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server_pg(
    tmp_path_factory: pytest.TempPathFactory, pg_cluster: Cluster
) -> Iterator[LiveServer]:
    """`jornada serve` on PostgreSQL."""
    directory = tmp_path_factory.mktemp("live-pg")
    server = start_server(_new_pg_database(pg_cluster), directory / "serve.log")
    yield server
    server.stop()


@pytest.fixture
def server_shop(live_server: LiveServer) -> Iterator[tuple[LiveServer, Shop, Database]]:
    """A fresh workspace on the shared live server, and a direct handle on its database."""
    db = Database(live_server.database_url)
    yield live_server, make_shop(db), db
    db.dispose()
