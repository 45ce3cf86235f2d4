"""The one write path for contacts: resolve identities, merge, fold events into profiles.

Everything for a batch happens in the caller's transaction with a fixed number
of queries (load identities, load contacts, write back), so cost grows with
the batch, not with the size of the workspace. Merges are rare and run their
re-pointing updates right away.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from jornada.contacts.models import ConsentRecord, Contact, ContactMerge, Identity, Order
from jornada.contacts.state import ContactState, OrderChange, apply_event, merge_states
from jornada.db.bulk import Bulk
from jornada.errors import NotFound
from jornada.events.models import Event
from jornada.events.record import EventRecord
from jornada.ids import new_id
from jornada.workspaces.models import WorkspaceRef

Key = tuple[str, str]  # (kind, value)

_STATE_COLUMNS = [
    c
    for c in ContactState.__dataclass_fields__
    if c not in {"is_new", "dirty", "orders_changed", "consent_changes"}
]
_UPDATABLE_SET = frozenset(_STATE_COLUMNS) - {"id", "workspace_id", "created_at", "updated_at"}
_TIME_COLUMNS = frozenset(
    {
        "first_seen_at",
        "last_seen_at",
        "first_order_at",
        "last_order_at",
        "last_engaged_at",
        "created_at",
        "updated_at",
    }
)
_JSON_COLUMNS = frozenset(
    {
        "traits",
        "tags",
        "consent",
        "last_product_viewed",
        "open_cart",
        "open_boletos",
        "web_session",
        "flow_entries",
    }
)
_UPDATABLE_AT = [(i, c) for i, c in enumerate(_STATE_COLUMNS) if c in _UPDATABLE_SET]
_TIME_AT = [i for i, c in enumerate(_STATE_COLUMNS) if c in _TIME_COLUMNS]
_JSON_AT = [i for i, c in enumerate(_STATE_COLUMNS) if c in _JSON_COLUMNS]
_ORDERS_AT, _SPENT_AT, _LAST_ORDER_AT, _MERGED_AT = (
    _STATE_COLUMNS.index(c)
    for c in ("orders_count", "total_spent_cents", "last_order_at", "merged_into_id")
)
_CHUNK = 500
_ORDER_COLUMNS = (
    "workspace_id",
    "order_id",
    "contact_id",
    "total_cents",
    "currency",
    "status",
    "placed_at",
)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def record_keys(record: EventRecord) -> list[Key]:
    keys: list[Key] = []
    if record.user_id:
        keys.append(("user_id", record.user_id))
    if record.anonymous_id:
        keys.append(("anonymous_id", record.anonymous_id))
    if record.email:
        keys.append(("email", record.email))
    if record.phone:
        keys.append(("phone", record.phone))
    if record.previous_id:
        # alias: previousId may be an earlier userId or an anonymousId
        keys += [("user_id", record.previous_id), ("anonymous_id", record.previous_id)]
    return keys


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """A contact's order facts at one moment (what RFM ranks), and whether it was merged away."""

    orders_count: int
    total_spent_cents: int
    last_order_at: datetime | None
    merged: bool

    @classmethod
    def of(cls, state: ContactState) -> OrderFacts:
        return cls(
            state.orders_count,
            state.total_spent_cents,
            state.last_order_at,
            state.merged_into_id is not None,
        )

    @classmethod
    def of_row(cls, row: tuple[Any, ...]) -> OrderFacts:
        """From a before image (a tuple in ``_STATE_COLUMNS`` order, times already parsed)."""
        return cls(
            row[_ORDERS_AT], row[_SPENT_AT], row[_LAST_ORDER_AT], row[_MERGED_AT] is not None
        )


class ContactBatch:
    """In-memory view of the identities and contacts a batch touches, written back in bulk.

    Ingestion folds events into it; the flow runner then reads and changes the
    same states (tags, stage, score…), and a second :meth:`flush` writes only
    what the runner changed.
    """

    def __init__(self, session: Session, workspace: WorkspaceRef, now: datetime) -> None:
        self.session = session
        # Core execution on the session's connection: the ORM adds nothing for bulk rows
        self.conn = session.connection()
        self.workspace = workspace
        self.now = now
        self.identities: dict[Key, str] = {}
        self.states: dict[str, ContactState] = {}
        self.new_identities: list[dict[str, str]] = []
        self.order_changes: list[tuple[str, OrderChange]] = []
        self.bulk = Bulk(session.get_bind().dialect.name)
        self.loaded: dict[str, tuple[Any, ...]] = {}
        #: the order facts of each contact written, as they were before this batch (None: new)
        self.facts_before: dict[str, OrderFacts | None] = {}

    # -- loading --------------------------------------------------------------------
    def load(self, records: Sequence[EventRecord]) -> None:
        values = sorted({value for r in records for _, value in record_keys(r)})
        wanted = {key for r in records for key in record_keys(r)}
        ws = self.workspace.id
        for chunk in _chunks(values):
            rows = self.bulk.select_in(
                self.conn, "identities", ("kind", "value", "contact_id"), ws, "value", chunk
            )
            for kind, value, contact_id in rows:
                if (kind, value) in wanted:
                    self.identities[(kind, value)] = contact_id
        self._load_states(sorted(set(self.identities.values())))

    @classmethod
    def reader(cls, session: Session, workspace_id: str, now: datetime) -> ContactBatch:
        """A batch for reading and changing existing contacts (the runner's timers, enrolments)."""
        return cls(session, WorkspaceRef(workspace_id, "", "UTC", "BRL"), now)

    def contacts(self, ids: Iterable[str]) -> dict[str, ContactState]:
        """The states of these contacts, read from the database unless already in the batch."""
        wanted = set(ids)
        self._load_states(sorted(wanted - self.states.keys()))
        return {i: self.states[i] for i in wanted if i in self.states}

    def _load_states(self, ids: Sequence[str]) -> None:
        bulk = self.bulk
        for chunk in _chunks(ids):
            rows = bulk.select_in(
                self.conn, "contacts", _STATE_COLUMNS, self.workspace.id, "id", chunk
            )
            for row in rows:
                values = list(row)
                for i in _TIME_AT:
                    values[i] = bulk.read_time(values[i])
                for i in _JSON_AT:
                    values[i] = bulk.read_json(values[i])
                self.loaded[values[0]] = tuple(values)
                state = ContactState(*values)  # shares containers: state code never mutates them
                self.states[state.id] = state

    # -- resolving ------------------------------------------------------------------
    def resolve(self, record: EventRecord) -> ContactState:
        """The contact this event belongs to, creating or merging contacts as its ids say."""
        keys = record_keys(record)
        candidates: list[ContactState] = []
        for key in keys:
            contact_id = self.identities.get(key)
            if contact_id is not None:
                state = self.states[contact_id]
                if state not in candidates:
                    candidates.append(state)
        if record.user_id:
            # a known person is never merged with a contact that belongs to another userId
            candidates = [c for c in candidates if c.user_id in (None, record.user_id)]
        if not candidates:
            contact = ContactState.new(
                new_id(),
                self.workspace.id,
                at=record.timestamp,
                now=self.now,
                timezone=self.workspace.timezone,
                currency=self.workspace.currency,
            )
            self.states[contact.id] = contact
        else:
            contact = self._pick_survivor(candidates, record)
            for other in candidates:
                if other is not contact and not (
                    other.user_id and contact.user_id and other.user_id != contact.user_id
                ):
                    self._merge(contact, other, reason=f"{record.type}:{record.message_id}")
        for key in keys:
            if key not in self.identities and not (
                record.previous_id
                and key[1] == record.previous_id
                and key[0] == "user_id"
                and contact.user_id not in (None, record.previous_id)
            ):
                self.identities[key] = contact.id
                self.new_identities.append(
                    {
                        "workspace_id": self.workspace.id,
                        "kind": key[0],
                        "value": key[1],
                        "contact_id": contact.id,
                    }
                )
        return contact

    @staticmethod
    def _pick_survivor(candidates: list[ContactState], record: EventRecord) -> ContactState:
        for state in candidates:
            if record.user_id and state.user_id == record.user_id:
                return state
        with_user = [c for c in candidates if c.user_id]
        pool = with_user or candidates
        return min(pool, key=lambda c: (c.first_seen_at, c.id))

    def _merge(self, survivor: ContactState, loser: ContactState, *, reason: str) -> None:
        merge_states(survivor, loser)
        for key, contact_id in self.identities.items():
            if contact_id == loser.id:
                self.identities[key] = survivor.id
        for identity in self.new_identities:
            if identity["contact_id"] == loser.id:
                identity["contact_id"] = survivor.id
        self.order_changes = [
            (survivor.id if cid == loser.id else cid, change) for cid, change in self.order_changes
        ]
        if loser.is_new:
            return  # never written: nothing to re-point in the database
        ws, session = self.workspace.id, self.session
        for model in (Identity, Event, Order, ConsentRecord):
            self.conn.execute(
                update(model)
                .where(model.workspace_id == ws, model.contact_id == loser.id)
                .values(contact_id=survivor.id)
            )
        session.add(
            ContactMerge(
                id=new_id(),
                workspace_id=ws,
                from_contact_id=loser.id,
                into_contact_id=survivor.id,
                reason=reason[:200],
                merged_at=self.now,
            )
        )

    # -- writing --------------------------------------------------------------------
    def flush(self, dialect: str) -> None:
        conn, ws = self.conn, self.workspace.id
        self._write_orders()
        # a contact created and merged away inside this batch never reaches the database
        live = [s for s in self.states.values() if s.dirty and not (s.is_new and s.merged_into_id)]
        bulk = self.bulk
        bulk.insert(
            conn,
            "contacts",
            _STATE_COLUMNS,
            [self._adapt(s, _STATE_COLUMNS) for s in live if s.is_new],
        )
        # an update writes only the columns that changed, grouped by which ones did
        groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for state in live:
            if state.is_new:
                continue
            before = self.loaded[state.id]
            changed = tuple(
                c
                for i, c in _UPDATABLE_AT
                if (value := getattr(state, c)) is not before[i] and value != before[i]
            )
            if changed:
                state.updated_at = self.now
                columns = (*changed, "updated_at")
                groups.setdefault(columns, []).append((*self._adapt(state, columns), state.id))
        for columns, rows in groups.items():
            bulk.update(conn, "contacts", columns, "id", rows)
        bulk.insert(
            conn,
            "identities",
            ("workspace_id", "kind", "value", "contact_id"),
            [
                (i["workspace_id"], i["kind"], i["value"], i["contact_id"])
                for i in self.new_identities
            ],
            ignore_conflicts=True,
        )
        consent_rows = [
            {
                "workspace_id": ws,
                "contact_id": s.id,
                "channel": key.partition("_")[0],
                "purpose": key.partition("_")[2],
                "granted": granted,
                "source": source,
                "recorded_at": at,
            }
            for s in self.states.values()
            for key, granted, at, source in s.consent_changes
        ]
        if consent_rows:
            conn.execute(cast(Table, ConsentRecord.__table__).insert(), consent_rows)
        for state in live:
            if state.id not in self.facts_before:
                self.facts_before[state.id] = (
                    None if state.is_new else OrderFacts.of_row(self.loaded[state.id])
                )
        # what is written becomes the new "before" image: a later flush writes only later changes
        for state in live:
            self.loaded[state.id] = tuple(getattr(state, c) for c in _STATE_COLUMNS)
            state.is_new = state.dirty = state.orders_changed = False
        for state in self.states.values():
            state.consent_changes = []
            state.orders_changed = False
        self.new_identities, self.order_changes = [], []

    def _adapt(self, state: ContactState, columns: Sequence[str]) -> tuple[Any, ...]:
        bulk, out = self.bulk, []
        for column in columns:
            value = getattr(state, column)
            if column in _TIME_COLUMNS:
                value = bulk.time(value)
            elif column in _JSON_COLUMNS:
                value = bulk.json(value)
            out.append(value)
        return tuple(out)

    def _write_orders(self) -> None:
        """Store the batch's order changes, then recount the touched contacts' order facts.

        Driver-level statements (``db.bulk``): this runs for every batch with an order.
        """
        ws, conn, bulk = self.workspace.id, self.conn, self.bulk
        changes = self.order_changes
        if not changes and not any(s.orders_changed for s in self.states.values()):
            return
        rows = [
            (ws, ch.order_id, cid, ch.total_cents, ch.currency, ch.status, bulk.time(ch.placed_at))
            for cid, ch in changes
        ]
        # a resent or late Order Completed never revives a cancelled order
        bulk.insert(
            conn,
            "orders",
            _ORDER_COLUMNS,
            [r for r in rows if r[5] == "completed"],
            ignore_conflicts=True,
        )
        closed = [r for r in rows if r[5] != "completed"]
        bulk.insert(conn, "orders", _ORDER_COLUMNS, closed, ignore_conflicts=True)
        if closed:
            m = bulk.mark
            conn.exec_driver_sql(
                f"UPDATE orders SET status = {m} WHERE workspace_id = {m} AND order_id = {m}",
                [(r[5], ws, r[1]) for r in closed],
            )
        touched = sorted(
            {s.id for s in self.states.values() if s.orders_changed and s.merged_into_id is None}
        )
        for chunk in _chunks(touched):
            m = bulk.mark
            facts = {
                contact_id: (n, spent, first, last)
                for contact_id, n, spent, first, last in bulk.rows(
                    conn,
                    "SELECT contact_id, count(*), sum(total_cents), min(placed_at), max(placed_at) "
                    f"FROM orders WHERE workspace_id = {m} "
                    f"AND contact_id IN ({', '.join([m] * len(chunk))}) AND status = 'completed' "
                    "GROUP BY contact_id",
                    (ws, *chunk),
                )
            }
            for contact_id in chunk:
                state = self.states[contact_id]
                n, spent, first, last = facts.get(contact_id, (0, 0, None, None))
                state.orders_count = int(n)
                state.total_spent_cents = int(spent or 0)
                state.first_order_at = bulk.read_time(first)
                state.last_order_at = bulk.read_time(last)


def apply_records(
    session: Session,
    dialect: str,
    workspace: WorkspaceRef,
    records: Sequence[EventRecord],
    now: datetime,
) -> tuple[list[str], ContactBatch]:
    """Fold new (already deduplicated) events into contacts; returns each event's contact id
    and the batch, whose states the flow runner goes on with.

    Events are applied in timestamp order (arrival order on ties), so a batch
    that says "added to cart, then bought" leaves no open cart whatever the
    order it was sent in.
    """
    batch = ContactBatch(session, workspace, now)
    batch.load(records)
    order = sorted(range(len(records)), key=lambda i: records[i].timestamp)
    contact_of: list[ContactState | None] = [None] * len(records)
    for i in order:
        record = records[i]
        state = batch.resolve(record)
        change = apply_event(state, record, workspace.timezone)
        if change is not None:
            batch.order_changes.append((state.id, change))
        contact_of[i] = state
    batch.flush(dialect)
    result = []
    for maybe in contact_of:
        assert maybe is not None
        state = maybe
        while state.merged_into_id is not None:
            state = batch.states[state.merged_into_id]
        result.append(state.id)
    return result, batch


def update_contact(
    session: Session,
    workspace_id: str,
    contact_id: str,
    *,
    now: datetime,
    tag: str | None = None,
    untag: str | None = None,
    traits: dict[str, Any] | None = None,
    stage: str | None = None,
    owner: str | None = None,
    score_delta: int = 0,
) -> Contact:
    """Change what a flow or a person may change on a contact: tags, traits, stage, owner, score."""
    contact = session.scalar(
        select(Contact).where(Contact.workspace_id == workspace_id, Contact.id == contact_id)
    )
    if contact is None:
        raise NotFound(f"no contact with id {contact_id!r}", field="contact_id")
    change_contact(
        contact,
        now=now,
        tag=tag,
        untag=untag,
        traits=traits,
        stage=stage,
        owner=owner,
        score_delta=score_delta,
    )
    return contact


def change_contact(
    contact: Contact | ContactState,
    *,
    now: datetime,
    tag: str | None = None,
    untag: str | None = None,
    traits: dict[str, Any] | None = None,
    stage: str | None = None,
    owner: str | None = None,
    score_delta: int = 0,
) -> None:
    """:func:`update_contact` on a contact already loaded: an ORM row or a batch's state."""
    if isinstance(contact, ContactState):
        contact.dirty = True
    tags = set(contact.tags)
    if tag:
        tags.add(tag)
    if untag:
        tags.discard(untag)
    if tags != set(contact.tags):
        contact.tags = sorted(tags)
    if traits:
        contact.traits = {**contact.traits, **traits}
    if stage:
        contact.stage = stage
    if owner:
        contact.owner = owner
    if score_delta:
        contact.score = contact.score + score_delta
    contact.updated_at = now
