"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import jornada.cli  # noqa: F401  (imports every package, so every model is declared)
from jornada.db import Base, Database


def test_the_migrated_schema_is_the_declared_one(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
