"""a narrow index of the commerce facts segments read most

Segments on orders, spend and recency (inactive-*, high-ticket, the RFM cells)
read these columns only; with them in one index SQLite answers from the index
instead of reading every wide contact row (JSON traits, sessions, carts).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = [
    "workspace_id",
    "merged_into_id",
    "orders_count",
    "last_order_at",
    "total_spent_cents",
    "id",
]


def upgrade() -> None:
    op.create_index("ix_contacts_facts", "contacts", COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_contacts_facts", table_name="contacts")
