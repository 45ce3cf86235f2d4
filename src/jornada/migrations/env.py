"""Alembic environment: every table of every package, batch mode for SQLite's ALTER limits."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import jornada.audience.models
import jornada.audience.predict.models
import jornada.audience.scoring.tables
import jornada.channels.models
import jornada.channels.push.models
import jornada.contacts.models
import jornada.crm.models
import jornada.events.models
import jornada.flows.models
import jornada.inbox.models
import jornada.outbox.models
import jornada.workspaces.models  # noqa: F401 - registers the tables on Base.metadata
from jornada.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(
            str(config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool
        )
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
