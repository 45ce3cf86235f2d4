"""segment membership kept incrementally, and the moments time may change it

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 20:45:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import jornada.db.types

revision: str = "0012"
down_revision: str | None = "0011"
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
        "segment_members",
        sa.Column("segment_key", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column("entered_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        *_workspace("segment_members"),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_key", "contact_id", name=op.f("pk_segment_members")
        ),
    )
    op.create_table(
        "segment_rechecks",
        sa.Column("segment_key", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column("due_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        *_workspace("segment_rechecks"),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_key", "contact_id", name=op.f("pk_segment_rechecks")
        ),
    )
    op.create_index("ix_segment_rechecks_due", "segment_rechecks", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_segment_rechecks_due", table_name="segment_rechecks")
    op.drop_table("segment_rechecks")
    op.drop_table("segment_members")
