"""Installing flow versions and finding the active ones, cached per process."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.db.bulk import Bulk
from jornada.events.canonical import PRODUCT_UPDATED
from jornada.flows.definition import (
    END,
    DateTrigger,
    EventTrigger,
    FlowDocument,
    PriceDropTrigger,
    SegmentTrigger,
)
from jornada.flows.models import FlowVersion
from jornada.ids import new_id


@dataclass(frozen=True)
class LoadedFlow:
    """A flow version ready to run, with the events it reacts to."""

    version_id: str
    key: str
    version: int
    doc: FlowDocument

    @cached_property
    def uses_history(self) -> bool:
        """Whether conditions ask what the contact did since entering (``performed``)."""
        return (
            '"performed"' in orjson.dumps(self.doc.model_dump(mode="json", by_alias=True)).decode()
        )

    @cached_property
    def segments(self) -> frozenset[str]:
        """Keys of the segments whose ``Segment Entered``/``Exited`` events this flow reacts to."""
        return frozenset(
            t.segment
            for t in self.doc.triggers
            if isinstance(t, SegmentTrigger) and t.where is None
        )

    @cached_property
    def wait_events(self) -> frozenset[str]:
        return frozenset(e for s in self.doc.steps if s.wait_for for e in s.wait_for.events)

    @cached_property
    def events(self) -> frozenset[str]:
        """Every event name that can enrol, resume, convert or end a run of this flow."""
        names = set(self.wait_events) | set(self.doc.exit.events)
        for trigger in self.doc.triggers:
            if isinstance(trigger, EventTrigger):
                names.update(trigger.events)
            elif isinstance(trigger, SegmentTrigger) and trigger.where is None:
                names.add(trigger.event)
            elif isinstance(trigger, DateTrigger):
                names.update(trigger.unless)
                if trigger.event:
                    names.add(trigger.event)
            elif isinstance(trigger, PriceDropTrigger):
                names.add(PRODUCT_UPDATED)
        if self.doc.scoring:
            names.update(self.doc.scoring.events)
        if self.doc.goal:
            names.add(self.doc.goal.event)
        if self.doc.exit.on_reply:
            names.add("Message Replied")
        if self.doc.exit.on_opt_out:
            names.add("Unsubscribed")
        return frozenset(names)

    @cached_property
    def watching(self) -> list[tuple[int, SegmentTrigger | DateTrigger]]:
        """The triggers any change to a contact may fire (segment predicates, contact dates)."""
        found: list[tuple[int, SegmentTrigger | DateTrigger]] = []
        for n, trigger in enumerate(self.doc.triggers):
            if (isinstance(trigger, SegmentTrigger) and trigger.where is not None) or (
                isinstance(trigger, DateTrigger) and trigger.event is None
            ):
                found.append((n, trigger))
        return found


def checksum(doc: FlowDocument) -> str:
    data = doc.model_dump(mode="json", by_alias=True)
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def install(
    session: Session, workspace_id: str, doc: FlowDocument, *, now: datetime
) -> FlowVersion:
    """Make ``doc`` the active version of its key; an unchanged document keeps its version."""
    digest = checksum(doc)
    latest = session.scalar(
        select(FlowVersion)
        .where(FlowVersion.workspace_id == workspace_id, FlowVersion.key == doc.key)
        .order_by(FlowVersion.version.desc())
        .limit(1)
    )
    if latest is not None and latest.checksum == digest:
        latest.active = True
        return latest
    for old in session.scalars(
        select(FlowVersion).where(
            FlowVersion.workspace_id == workspace_id,
            FlowVersion.key == doc.key,
            FlowVersion.active.is_(True),
        )
    ):
        old.active = False
    version = FlowVersion(
        id=new_id(),
        workspace_id=workspace_id,
        key=doc.key,
        version=(latest.version + 1) if latest else 1,
        name=doc.name,
        document=doc.model_dump(mode="json", by_alias=True, exclude_none=True),
        checksum=digest,
        active=True,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version


def _load(row: Any) -> LoadedFlow:
    return LoadedFlow(row.id, row.key, row.version, FlowDocument.model_validate(row.document))


class Catalog:
    """Active flows per workspace and any version by id, parsed once per process.

    Each call checks which versions are active with one narrow query, so a flow
    installed by another process is seen on the next batch.
    """

    def __init__(self) -> None:
        self._versions: dict[str, LoadedFlow] = {}
        self._lock = threading.Lock()

    def version(self, session: Session, version_id: str) -> LoadedFlow:
        flow = self._versions.get(version_id)
        if flow is None:
            row = session.get(FlowVersion, version_id)
            if row is None:
                raise LookupError(f"flow version {version_id} does not exist")
            flow = _load(row)
            with self._lock:
                self._versions[version_id] = flow
        return flow

    def active(self, session: Session, workspace_id: str) -> list[LoadedFlow]:
        session.flush()  # an activation not yet flushed counts: the query goes to the driver
        conn = session.connection()
        bulk = Bulk(conn.dialect.name)
        rows = bulk.rows(  # every ingested batch asks: no ORM query on that path
            conn,
            f"SELECT id FROM flow_versions WHERE workspace_id = {bulk.mark} AND active "
            "ORDER BY key",
            (workspace_id,),
        )
        return [self.version(session, row[0]) for row in rows]


CATALOG = Catalog()

__all__ = ["CATALOG", "END", "Catalog", "LoadedFlow", "checksum", "install"]
