"""lead scoring models, scores and their reasons

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import jornada.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "scoring_models",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", _json(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        _workspace_fk("scoring_models"),
        sa.PrimaryKeyConstraint("workspace_id", "version", name=op.f("pk_scoring_models")),
    )
    op.create_table(
        "lead_scores",
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("engagement", sa.Integer(), nullable=False),
        sa.Column("state", _json(), nullable=False),
        sa.Column("as_of", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("check_at", jornada.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        _workspace_fk("lead_scores"),
        sa.PrimaryKeyConstraint("workspace_id", "contact_id", name=op.f("pk_lead_scores")),
    )
    op.create_index("ix_lead_scores_check", "lead_scores", ["workspace_id", "check_at"])
    op.create_table(
        "lead_score_reasons",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column("at", jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        _workspace_fk("lead_score_reasons"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_score_reasons")),
    )
    op.create_index(
        "ix_lead_score_reasons_contact",
        "lead_score_reasons",
        ["workspace_id", "contact_id", "at"],
    )


def downgrade() -> None:
    op.drop_index("ix_lead_score_reasons_contact", table_name="lead_score_reasons")
    op.drop_table("lead_score_reasons")
    op.drop_index("ix_lead_scores_check", table_name="lead_scores")
    op.drop_table("lead_scores")
    op.drop_table("scoring_models")
