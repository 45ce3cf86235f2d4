"""segment memberships and re-checks kept by contact; a contact's events by name from the index

An event re-evaluates the tracked segments of one contact: it reads the
contact's events of some names, its memberships and its re-checks, and writes
the ones that changed.

* ``segment_members`` and ``segment_rechecks`` are keyed by contact first,
  ``(workspace_id, contact_id, segment_key)``, and on SQLite stored ``WITHOUT
  ROWID``: a contact's rows are one seek to read and one page to write, and a
  row is one B-tree instead of two. Members keep an index by segment (listing,
  forgetting a deleted segment); re-checks keep theirs by due time.
* ``ix_events_contact_time`` gains ``event``: the contact's events of those
  names come from the index alone, without reading each event's row.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import jornada.db.types

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = {"segment_members": "entered_at", "segment_rechecks": "due_at"}


def _rebuild(table: str, key: tuple[str, ...], with_rowid: bool) -> None:
    """Recreate ``table`` with primary key ``key``, its rows kept (constraint names kept)."""
    moment = _TABLES[table]
    old = f"{table}_old"
    op.rename_table(table, old)
    if op.get_bind().dialect.name == "postgresql":  # PK names are index names there
        op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{table} TO pk_{old}")
    op.create_table(
        table,
        sa.Column("segment_key", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.String(length=26), nullable=False),
        sa.Column(moment, jornada.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workspace_id", sa.String(length=26), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f(f"fk_{table}_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}")),
        sqlite_with_rowid=with_rowid,
    )
    columns = f"workspace_id, segment_key, contact_id, {moment}"
    op.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")
    op.drop_table(old)


def upgrade() -> None:
    op.drop_index("ix_events_contact_time", table_name="events")
    op.create_index(
        "ix_events_contact_time", "events", ["workspace_id", "contact_id", "timestamp", "event"]
    )
    op.drop_index("ix_segment_rechecks_due", table_name="segment_rechecks")
    by_contact = ("workspace_id", "contact_id", "segment_key")
    for table in _TABLES:
        _rebuild(table, by_contact, with_rowid=False)
    op.create_index(
        "ix_segment_members_segment",
        "segment_members",
        ["workspace_id", "segment_key", "contact_id"],
    )
    op.create_index("ix_segment_rechecks_due", "segment_rechecks", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_segment_rechecks_due", table_name="segment_rechecks")
    op.drop_index("ix_segment_members_segment", table_name="segment_members")
    by_segment = ("workspace_id", "segment_key", "contact_id")
    for table in _TABLES:
        _rebuild(table, by_segment, with_rowid=True)
    op.create_index("ix_segment_rechecks_due", "segment_rechecks", ["due_at"])
    op.drop_index("ix_events_contact_time", table_name="events")
    op.create_index("ix_events_contact_time", "events", ["workspace_id", "contact_id", "timestamp"])
