"""lead scores due for a re-check found by time alone (the scheduler asks across workspaces)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 20:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_lead_scores_due", "lead_scores", ["check_at"])


def downgrade() -> None:
    op.drop_index("ix_lead_scores_due", table_name="lead_scores")
