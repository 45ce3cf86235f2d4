"""RFM quintile bounds kept current as orders arrive, and the value counts they move along

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import jornada.db.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace(table: str) -> list[Any]:
    return [
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f(f"fk_{table}_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "rfm_values",
        sa.Column("dimension", sa.String(length=1), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        *_workspace("rfm_values"),
        sa.PrimaryKeyConstraint("workspace_id", "dimension", "value", name=op.f("pk_rfm_values")),
    )
    op.create_table(
        "rfm_bounds",
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("bounds", jornada.db.types.Json, nullable=False),
        sa.Column("updated_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        *_workspace("rfm_bounds"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_rfm_bounds")),
    )


def downgrade() -> None:
    op.drop_table("rfm_bounds")
    op.drop_table("rfm_values")
