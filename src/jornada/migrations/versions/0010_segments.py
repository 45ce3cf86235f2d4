"""custom segments per workspace, versioned

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jornada.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("where", jornada.db.types.Json, nullable=False),
        sa.Column("created_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", jornada.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_segments_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "key", "version", name=op.f("pk_segments")),
    )


def downgrade() -> None:
    op.drop_table("segments")
