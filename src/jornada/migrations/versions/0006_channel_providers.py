"""provider settings per workspace, secrets encrypted; message delivery

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import jornada.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMES = (
    "next_attempt_at",
    "sent_at",
    "delivered_at",
    "opened_at",
    "clicked_at",
    "replied_at",
    "failed_at",
    "bounced_at",
)


def upgrade() -> None:
    op.create_table(
        "channel_providers",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.String(length=500), nullable=True),
        sa.Column(
            "options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("secrets", sa.Text(), nullable=False),
        sa.Column("created_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_channel_providers_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "channel", name=op.f("pk_channel_providers")),
    )
    op.create_table(
        "integration_incidents",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("opened_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_failure_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", jornada.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_integration_incidents_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_incidents")),
    )
    op.create_index(
        "ix_integration_incidents_open",
        "integration_incidents",
        ["workspace_id", "channel", "closed_at"],
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("text_body", sa.Text(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("provider_message_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("error", sa.String(length=500), nullable=True))
        for name in _TIMES:
            batch.add_column(
                sa.Column(name, jornada.db.types.UTCDateTime(timezone=True), nullable=True)
            )
    # sandbox messages sent before this revision: their creation is when they went
    op.execute("UPDATE messages SET sent_at = created_at WHERE status = 'sent'")
    op.create_index("ix_messages_due", "messages", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_due", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for name in reversed(_TIMES):
            batch.drop_column(name)
        batch.drop_column("error")
        batch.drop_column("provider_message_id")
        batch.drop_column("attempts")
        batch.drop_column("text_body")
    op.drop_index("ix_integration_incidents_open", table_name="integration_incidents")
    op.drop_table("integration_incidents")
    op.drop_table("channel_providers")
