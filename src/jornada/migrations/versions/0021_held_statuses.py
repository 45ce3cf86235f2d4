"""statuses a provider reported before the message's id was recorded

``held_statuses`` keeps them until the delivery pass records the id (then they
are applied) or for a day (a message Jornada did not send).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jornada.db.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_statuses",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("held_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_held_statuses_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_statuses")),
    )
    op.create_index(
        "ix_held_statuses_message",
        "held_statuses",
        ["workspace_id", "channel", "provider_message_id"],
    )
    op.create_index("ix_held_statuses_held_at", "held_statuses", ["held_at"])


def downgrade() -> None:
    op.drop_index("ix_held_statuses_held_at", table_name="held_statuses")
    op.drop_index("ix_held_statuses_message", table_name="held_statuses")
    op.drop_table("held_statuses")
