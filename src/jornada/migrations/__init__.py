"""Alembic migrations, run the same on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from jornada.db.session import Database, normalize_url

HERE = Path(__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (the latest by default)."""
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several `jornada worker`s started at once on a fresh database: one migrates.
                connection.execute(text("SELECT pg_advisory_xact_lock(7419001)"))
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        database.dispose()
