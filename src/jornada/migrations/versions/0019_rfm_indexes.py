"""customers in recency and in spend order, for RFM bounds by rank

* ``ix_contacts_recency`` (partial: contacts with an order): the quintile bounds
  of recency are read at their ranks (``OFFSET``) instead of sorting every
  customer, and the RFM cells of recency 5 are answered from it alone.
* ``ix_contacts_spend`` (partial, the same customers): the bounds of spend.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 04:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CUSTOMERS = sa.text("last_order_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_contacts_recency",
        "contacts",
        [
            "workspace_id",
            "merged_into_id",
            "last_order_at",
            "orders_count",
            "total_spent_cents",
            "id",
        ],
        sqlite_where=CUSTOMERS,
        postgresql_where=CUSTOMERS,
    )
    op.create_index(
        "ix_contacts_spend",
        "contacts",
        ["workspace_id", "merged_into_id", "total_spent_cents", "orders_count"],
        sqlite_where=CUSTOMERS,
        postgresql_where=CUSTOMERS,
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_spend", table_name="contacts")
    op.drop_index("ix_contacts_recency", table_name="contacts")
