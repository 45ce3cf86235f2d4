"""indexes that let a full segment recomputation read indexes only

* ``ix_events_name_time`` gains ``contact_id``: an event condition ("viewed a
  product 3 times in 7 days") groups the events of one name in a window by
  contact, which the old index answered with one table read per event.
* ``ix_contacts_open_cart``: the contacts with an open cart, so that
  ``cart-abandoners`` does not read every wide contact row; a closed cart is
  now always SQL NULL (it was sometimes the JSON ``null``), which the partial
  index and the segment's SQL rely on.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_CART = sa.text("open_cart IS NOT NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE contacts SET open_cart = NULL WHERE open_cart = 'null'::jsonb")
    else:
        op.execute("UPDATE contacts SET open_cart = NULL WHERE json_type(open_cart) = 'null'")
    op.create_index(
        "ix_contacts_open_cart",
        "contacts",
        ["workspace_id", "merged_into_id", "id"],
        sqlite_where=OPEN_CART,
        postgresql_where=OPEN_CART,
    )
    op.drop_index("ix_events_name_time", table_name="events")
    op.create_index(
        "ix_events_name_time", "events", ["workspace_id", "event", "timestamp", "contact_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_events_name_time", table_name="events")
    op.create_index("ix_events_name_time", "events", ["workspace_id", "event", "timestamp"])
    op.drop_index("ix_contacts_open_cart", table_name="contacts")
