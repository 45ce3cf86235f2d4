"""predicted orders per contact

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import jornada.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prediction_models",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trained_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("as_of", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column(
            "evaluation",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_prediction_models_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "version", name=op.f("pk_prediction_models")),
    )
    op.create_table(
        "contact_predictions",
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("base_value", sa.Float(), nullable=False),
        sa.Column("expected_gap_days", sa.Float(), nullable=True),
        sa.Column(
            "expected_next_order_at", jornada.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("next_order_reason", sa.String(length=120), nullable=True),
        sa.Column(
            "contributions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_predictions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "contact_id", name=op.f("pk_contact_predictions")),
    )


def downgrade() -> None:
    op.drop_table("contact_predictions")
    op.drop_table("prediction_models")
