"""A workspace's custom segments: saved as new versions, read as the current one.

Built-in keys (``new-customers``, ``high-ticket``, ``rfm-*``…) are reserved; a
custom segment is validated when saved, including the segments it refers to.
Deleting keeps the versions (marked deleted): the key may be used again and
its numbering goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from jornada.audience.definition import (
    Condition,
    SegmentDefinition,
    SegmentDefinitionError,
    load_definition,
    resolve,
)
from jornada.audience.membership import forget_segment
from jornada.audience.models import StoredSegment
from jornada.errors import Conflict, NotFound


@dataclass(frozen=True)
class SavedSegment:
    """A custom segment's definition with its version and when that version was saved."""

    definition: SegmentDefinition
    version: int
    saved_at: datetime


def _saved(row: StoredSegment) -> SavedSegment:
    definition = SegmentDefinition(
        key=row.key, name=row.name, description=row.description, where=row.where
    )
    return SavedSegment(definition, row.version, row.created_at)


def _current_rows(
    session: Session, workspace_id: str, key: str | None = None
) -> list[StoredSegment]:
    latest = (
        select(StoredSegment.key, func.max(StoredSegment.version).label("version"))
        .where(StoredSegment.workspace_id == workspace_id)
        .group_by(StoredSegment.key)
    )
    if key is not None:
        latest = latest.where(StoredSegment.key == key)
    newest = latest.subquery()
    rows = session.scalars(
        select(StoredSegment)
        .join(
            newest,
            (StoredSegment.key == newest.c.key) & (StoredSegment.version == newest.c.version),
        )
        .where(StoredSegment.workspace_id == workspace_id, StoredSegment.deleted_at.is_(None))
        .order_by(StoredSegment.key)
    )
    return list(rows)


def custom_segments(session: Session, workspace_id: str) -> list[SavedSegment]:
    """The workspace's current custom segments, by key."""
    return [_saved(r) for r in _current_rows(session, workspace_id)]


def custom_segment(session: Session, workspace_id: str, key: str) -> SavedSegment | None:
    rows = _current_rows(session, workspace_id, key)
    return _saved(rows[0]) if rows else None


def segment_versions(session: Session, workspace_id: str, key: str) -> list[SavedSegment]:
    """Every saved version of ``key``, newest first (deleted ones included); 404 for none."""
    rows = list(
        session.scalars(
            select(StoredSegment)
            .where(StoredSegment.workspace_id == workspace_id, StoredSegment.key == key)
            .order_by(StoredSegment.version.desc())
        )
    )
    if not rows:
        raise NotFound(f"no custom segment with key {key!r}", field="key")
    return [_saved(r) for r in rows]


def save_segment(
    session: Session,
    workspace_id: str,
    document: Mapping[str, Any],
    *,
    now: datetime,
    reserved: Callable[[str], bool],
    lookup: Callable[[str], Condition],
) -> SavedSegment:
    """Validate ``document`` and store it as the next version of its key.

    ``reserved`` tells the built-in keys (refused with 409); ``lookup`` gives
    the current condition of another segment, so that references are checked
    (unknown key or a loop: :class:`SegmentDefinitionError`).
    """
    definition = load_definition(document)
    if reserved(definition.key):
        raise Conflict(
            f"{definition.key!r} is a built-in segment; save yours under another key",
            field="key",
        )

    def refer(key: str) -> Condition:
        if key == definition.key:
            return definition.condition  # a loop through itself: resolve() names it
        return lookup(key)

    resolve(definition.condition, refer, (definition.key,))
    last = session.scalar(
        select(func.max(StoredSegment.version)).where(
            StoredSegment.workspace_id == workspace_id, StoredSegment.key == definition.key
        )
    )
    row = StoredSegment(
        workspace_id=workspace_id,
        key=definition.key,
        version=(last or 0) + 1,
        name=definition.name,
        description=definition.description,
        where=definition.where,
        created_at=now,
        deleted_at=None,
    )
    session.add(row)
    session.flush()
    return _saved(row)


def delete_segment(session: Session, workspace_id: str, key: str, *, now: datetime) -> None:
    """Mark every version of ``key`` deleted and forget its stored members; 404 when there is
    no current one."""
    if custom_segment(session, workspace_id, key) is None:
        raise NotFound(f"no custom segment with key {key!r}", field="key")
    session.execute(
        update(StoredSegment)
        .where(
            StoredSegment.workspace_id == workspace_id,
            StoredSegment.key == key,
            StoredSegment.deleted_at.is_(None),
        )
        .values(deleted_at=now)
    )
    forget_segment(session, workspace_id, key)


__all__ = [
    "SavedSegment",
    "SegmentDefinitionError",
    "custom_segment",
    "custom_segments",
    "delete_segment",
    "save_segment",
    "segment_versions",
]
