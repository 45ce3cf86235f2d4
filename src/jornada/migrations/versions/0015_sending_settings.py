"""per-workspace settings of the sending gate; messages sent by day for providers' daily caps

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 21:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import jornada.db.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sending_settings",
        sa.Column("quiet_start", sa.String(length=5), nullable=False),
        sa.Column("quiet_end", sa.String(length=5), nullable=False),
        sa.Column(
            "caps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("smart_window_seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_sending_settings_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_sending_settings")),
    )
    op.create_index("ix_messages_sent", "messages", ["workspace_id", "channel", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_sent", table_name="messages")
    op.drop_table("sending_settings")
