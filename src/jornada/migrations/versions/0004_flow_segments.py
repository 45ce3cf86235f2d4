"""flow segment members; flow entries, web session and last engagement per contact

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 17:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jornada.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flow_segment_members",
        sa.Column("flow_key", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column("entered_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_flow_segment_members_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "flow_key", "contact_id", name=op.f("pk_flow_segment_members")
        ),
    )

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("web_session", jornada.db.types.Json, nullable=True))
        batch_op.add_column(sa.Column("flow_entries", jornada.db.types.Json, nullable=True))
        batch_op.add_column(
            sa.Column("last_engaged_at", jornada.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("last_engaged_at")
        batch_op.drop_column("flow_entries")
        batch_op.drop_column("web_session")
    op.drop_table("flow_segment_members")
