"""contacts looked up by workspace and id use one index, never a scan of the workspace

Without statistics SQLite reads ``workspace_id = ? AND id IN (...)`` through
the first index that starts with workspace_id (e.g. the phone index) and scans
every contact of the workspace; an index on both columns is the obvious plan.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_contacts_ws_id", "contacts", ["workspace_id", "id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_contacts_ws_id", table_name="contacts")
