"""The imperative shell around the engine: enrol, wake, convert and end runs, in the caller's transaction.

Everything a step decides is written in the same transaction that moves the
run: the run row, the step log (unique per run and sequence number) and the
outbox rows (unique idempotency key). A crash before commit leaves nothing; a
retry replays the same decisions with the same keys.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.orm import Session

from jornada.audience import predicted_intervals, take_score_changes
from jornada.contacts import change_contact
from jornada.contacts.actions import ContactBatch
from jornada.contacts.state import (
    SESSION_GAP,
    ContactState,
    cents_str,
    order_total_cents,
    to_cents,
)
from jornada.db.bulk import Bulk
from jornada.errors import Conflict, NotFound
from jornada.events.canonical import PRODUCT_UPDATED, PRODUCT_VIEWED
from jornada.events.models import Event
from jornada.events.record import EventRecord
from jornada.flows.catalog import CATALOG, LoadedFlow
from jornada.flows.conditions import Facts, evaluate
from jornada.flows.decisions import (
    AddScore,
    AwaitEvent,
    CallWebhook,
    CreateTask,
    Decision,
    Finish,
    IssueCoupon,
    NotifyTeam,
    RunState,
    SendMessage,
    Sleep,
    UpdateContact,
)
from jornada.flows.definition import (
    DateTrigger,
    EventTrigger,
    ManualTrigger,
    PriceDropTrigger,
    ScoreTrigger,
    SegmentTrigger,
    Trigger,
)
from jornada.flows.engine import START, TIMER, Wake, advance, resolve_date, split_bucket
from jornada.flows.models import (
    FlowRun,
    FlowSegmentMember,
    RunRow,
    load_runs,
    save_runs,
)
from jornada.ids import new_id
from jornada.outbox import enqueue_many

HOLDOUT_WAIT = timedelta(days=30)  # how long a control-group run watches for the goal
OPEN = ("active", "scheduled")  # a run that still waits for something


def expected_next_order_at(contact: ContactState) -> datetime | None:
    """Last order plus the mean gap between the contact's orders (needs two orders)."""
    first, last, count = contact.first_order_at, contact.last_order_at, contact.orders_count
    if first is None or last is None or count < 2:
        return None
    return last + (last - first) / (count - 1)


def coupon_code(prefix: str, key: str) -> str:
    """A unique code for one coupon step of one run: prefix plus 8 hex digits of its key's hash."""
    return f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:8].upper()}"


class _ContactFacts(Mapping[str, Any]):
    """A contact's commerce facts, each computed when a condition first asks for it.

    Most conditions read one or two facts; building all of them for every
    event and every flow was a good part of what flows cost ingestion.
    """

    _KEYS = (
        "orders_count",
        "total_spent",
        "average_order_value",
        "first_order_at",
        "last_order_at",
        "last_engaged_at",
        "score",
        "days_since_last_order",
        "expected_next_order_at",
        "open_cart_value",
        "open_boletos",
        "email",
        "phone",
    )

    def __init__(
        self,
        contact: ContactState,
        now: datetime | None,
        next_order: Callable[[ContactState], datetime | None] = expected_next_order_at,
    ) -> None:
        self._contact = contact
        self._now = now
        self._next_order = next_order
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._cache:
            if key not in self._KEYS:
                raise KeyError(key)
            self._cache[key] = self._compute(key)
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._KEYS)

    def __len__(self) -> int:
        return len(self._KEYS)

    def _compute(self, key: str) -> Any:
        c, now = self._contact, self._now
        if key == "orders_count":
            return c.orders_count
        if key == "total_spent":
            return cents_str(c.total_spent_cents)
        if key == "average_order_value":
            return cents_str(c.total_spent_cents // c.orders_count) if c.orders_count else None
        if key in ("first_order_at", "last_order_at", "last_engaged_at"):
            moment = getattr(c, key)
            return moment.isoformat() if moment else None
        if key == "days_since_last_order":
            return (now - c.last_order_at).days if now and c.last_order_at else None
        if key == "expected_next_order_at":
            expected = self._next_order(c)
            return expected.isoformat() if expected else None
        if key == "open_cart_value":
            return (c.open_cart or {}).get("value")
        if key == "open_boletos":
            return len(c.open_boletos)
        return getattr(c, key)  # score, email, phone


class _Consent(Mapping[str, bool]):
    """Granted or not, per ``<channel>_<purpose>``, read from the contact when asked."""

    def __init__(self, consent: dict[str, Any]) -> None:
        self._consent = consent

    def __getitem__(self, key: str) -> bool:
        return bool(self._consent[key].get("granted"))

    def __iter__(self) -> Iterator[str]:
        return iter(self._consent)

    def __len__(self) -> int:
        return len(self._consent)


def contact_facts(
    contact: ContactState,
    properties: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
    next_order: Callable[[ContactState], datetime | None] = expected_next_order_at,
) -> Facts:
    """What conditions may read about a contact (facts computed on first use).

    ``next_order`` gives ``expected_next_order_at`` (the runner's reads stored predictions).
    """
    return Facts(
        traits=contact.traits,
        facts=_ContactFacts(contact, now, next_order),
        tags=_LazyTags(contact),
        stage=contact.stage,
        consent=_Consent(contact.consent),
        properties=properties or {},
        vars=variables or {},
    )


class _LazyTags:
    """Membership in the contact's tags, read when asked."""

    def __init__(self, contact: ContactState) -> None:
        self._contact = contact

    def __contains__(self, name: object) -> bool:
        return name in self._contact.tags


class _Lazy:
    """A set of names read from the database only if a condition asks about it."""

    def __init__(self, load: Callable[[], frozenset[str]]) -> None:
        self._load = load
        self._names: frozenset[str] | None = None

    def __contains__(self, name: object) -> bool:
        if self._names is None:
            self._names = self._load()
        return name in self._names


def _pattern_holds(
    trigger: EventTrigger,
    record: EventRecord,
    history: Sequence[tuple[str | None, datetime, dict[str, Any]]],
    web_session: dict[str, Any] | None = None,
) -> bool:
    """The trigger's repeat / session pattern over the contact's recent events (oldest first).

    A session with the usual 30-minute gap is read from the contact's current
    web session (kept by ingestion); another gap is traced through the history.
    """
    if trigger.repeat is None and trigger.session is None:
        return True
    rows = [row for row in history if row[1] <= record.timestamp]
    if trigger.repeat is not None:
        r = trigger.repeat
        same = record.properties.get(r.same) if r.same else None
        hits = [
            row
            for row in rows
            if row[0] == record.event
            and row[1] >= record.timestamp - r.within
            and (r.same is None or row[2].get(r.same) == same)
        ]
        if len(hits) < r.times:
            return False
    if trigger.session is not None and trigger.session.idle == SESSION_GAP:
        sess = trigger.session
        current = web_session or {"counts": {}, "started_at": record.timestamp.isoformat()}
        started = datetime.fromisoformat(current["started_at"])
        last = datetime.fromisoformat(current.get("last_at", current["started_at"]))
        count = current["counts"].get(record.event, 0)
        long_enough = sess.longer_than is not None and last - started > sess.longer_than
        many = sess.min_events is not None and count >= sess.min_events
        if not (long_enough or many):
            return False
    elif trigger.session is not None:
        sess = trigger.session
        start = record.timestamp
        for row in reversed(rows):
            if start - row[1] > sess.idle:
                break
            start = row[1]
        count = sum(row[0] == record.event for row in rows if row[1] >= start)
        long_enough = sess.longer_than is not None and record.timestamp - start > sess.longer_than
        many = sess.min_events is not None and count >= sess.min_events
        if not (long_enough or many):
            return False
    return True


def _enrolling_events(trigger: object) -> list[str]:
    """The event names that may enrol in a flow with this trigger."""
    if isinstance(trigger, EventTrigger):
        return trigger.events
    if isinstance(trigger, SegmentTrigger) and trigger.where is None:
        return [trigger.event]
    if isinstance(trigger, DateTrigger) and trigger.event is not None:
        return [trigger.event]
    return []


def _listens(trigger: object, record: EventRecord) -> bool:
    """Whether this event can enrol in a flow with this trigger (before its filters)."""
    if isinstance(trigger, EventTrigger):
        return record.event in trigger.events
    if isinstance(trigger, SegmentTrigger):
        return (
            trigger.where is None
            and record.event == trigger.event
            and record.properties.get("segment") == trigger.segment
        )
    if isinstance(trigger, DateTrigger):
        return trigger.event is not None and record.event == trigger.event
    return False


class Runner:
    """Moves runs of one workspace within one session (one transaction)."""

    def __init__(
        self,
        session: Session,
        workspace_id: str,
        now: datetime,
        *,
        contacts: ContactBatch | None = None,
    ) -> None:
        """``contacts``: the batch ingestion just folded events into, so its states are reused."""
        self.session = session
        self.workspace_id = workspace_id
        self.now = now
        self._batch = contacts or ContactBatch.reader(session, workspace_id, now)
        self._steps: list[tuple[str, int, str | None, str, dict[str, Any]]] = []
        self._effects: list[dict[str, Any]] = []
        # every run this runner read or started, written back at the end
        self._runs: list[RunRow] = []
        self._of_contact: dict[str, list[RunRow]] = defaultdict(list)  # the same runs, by contact
        self._prefetched: set[str] = set()  # contacts whose open runs are in _runs
        self._crossed: list[tuple[LoadedFlow, int, ContactState]] = []
        self.refusal: str | None = None  # why the last enrolment was refused
        self._membership: dict[tuple[str, str], bool] = {}
        self._stored_membership: dict[tuple[str, str], bool] = {}
        self._intervals: dict[str, timedelta | None] = {}  # predicted, by contact; see _next_order

    # -- events ---------------------------------------------------------------------------
    def on_events(self, records: Sequence[EventRecord], contact_ids: Sequence[str]) -> None:
        """Let stored events enrol, resume, convert or end runs.

        What the batch needs (contacts, their open runs, when they last entered
        each flow, their recent events for session and repeat triggers) is read
        with one query each, and new rows are flushed once at the end. Flows
        that watch the contact itself (a segment predicate, a contact date) look
        at every contact the batch touched.
        """
        scored = take_score_changes(self.session, self.workspace_id)
        flows = CATALOG.active(self.session, self.workspace_id)
        if not flows:
            return
        self._lead_score_crossings(flows, scored)
        interesting = frozenset().union(*(f.events for f in flows))
        todo = sorted(
            (
                (r, cid)
                for r, cid in zip(records, contact_ids, strict=True)
                if r.type == "track" and r.event in interesting
            ),
            key=lambda pair: pair[0].timestamp,
        )
        watching = [f for f in flows if f.watching]
        touched = set(contact_ids) if watching else set()
        if not todo and not touched and not self._crossed:
            return
        contacts = self._contacts({cid for _, cid in todo} | touched)
        runs = self._prefetch(contacts)
        patterns = [  # the triggers that need the contact's recent events
            t
            for f in flows
            for t in f.doc.triggers
            if isinstance(t, EventTrigger)
            and (t.repeat or (t.session and t.session.idle != SESSION_GAP))
        ]
        pattern_events = {e for t in patterns for e in t.events}
        history = self._recent(
            sorted({cid for r, cid in todo if r.event in pattern_events}),
            todo[0][0].timestamp if todo else self.now,
            todo[-1][0].timestamp if todo else self.now,
            patterns,
        )
        enrolling: dict[str | None, list[tuple[LoadedFlow, int, Trigger]]] = defaultdict(list)
        for flow in flows:
            for n, trigger in enumerate(flow.doc.triggers):
                for name in _enrolling_events(trigger):
                    enrolling[name].append((flow, n, trigger))
        with self.session.no_autoflush:
            for record, cid in todo:
                contact = contacts[cid]
                for run in list(runs[cid]):
                    if run.status in OPEN:
                        self._on_event(
                            CATALOG.version(self.session, run.flow_version_id), run, contact, record
                        )
                facts: Facts | None = None  # built once per event, only if a trigger matches
                for flow, n, trigger in enrolling.get(record.event, ()):
                    if not _listens(trigger, record):
                        continue
                    if facts is None:
                        facts = self._facts(contact, record.properties)
                    starts_at = None
                    if isinstance(trigger, EventTrigger):
                        if not (
                            evaluate(trigger.where, facts)
                            and _pattern_holds(
                                trigger, record, history.get(cid, []), contact.web_session
                            )
                        ):
                            continue
                    elif isinstance(trigger, DateTrigger):
                        starts_at = resolve_date(
                            trigger.moment, replace(facts, vars={}), contact.timezone
                        )
                        if starts_at is None or not evaluate(trigger.where, facts):
                            continue
                    started = self._enrol(
                        flow,
                        contact,
                        trigger_props=record.properties,
                        message_id=record.message_id,
                        active=runs[cid],
                        starts_at=starts_at,
                        via=n,
                    )
                    if started is not None:
                        runs[cid].append(started)
            for flow in watching:
                for cid in sorted(touched & contacts.keys()):
                    self._watch(flow, contacts[cid], runs[cid])
            for record, _ in todo:
                if record.event == PRODUCT_UPDATED:
                    for flow in flows:
                        for n, trigger in enumerate(flow.doc.triggers):
                            if isinstance(trigger, PriceDropTrigger):
                                self._price_drop(flow, n, trigger, record)
            self._drain()
            self._flush_segments()
        self._write()

    def _load(self, *where: Any) -> list[RunRow]:
        runs = load_runs(self.session, FlowRun.workspace_id == self.workspace_id, *where)
        self._keep(runs)
        return runs

    def _keep(self, runs: Sequence[RunRow]) -> None:
        self._runs.extend(runs)
        for run in runs:
            self._of_contact[run.contact_id].append(run)

    def _prefetch(self, contacts: dict[str, ContactState]) -> dict[str, list[RunRow]]:
        """The contacts' open runs (and, for contacts that predate it, their flow entries).

        Each contact's runs are read once per runner; later calls reuse them.
        """
        fresh = sorted(contacts.keys() - self._prefetched)
        for start in range(0, len(fresh), 500):
            self._load(FlowRun.contact_id.in_(fresh[start : start + 500]), FlowRun.status.in_(OPEN))
        self._prefetched.update(fresh)
        runs: dict[str, list[RunRow]] = defaultdict(list)
        for cid in contacts:
            runs[cid] = [r for r in self._of_contact.get(cid, ()) if r.status in OPEN]
        self._read_entries([c for c in contacts.values() if c.flow_entries is None])
        return runs

    # -- price drops ---------------------------------------------------------------------------
    def _price_drop(
        self, flow: LoadedFlow, n: int, trigger: PriceDropTrigger, record: EventRecord
    ) -> None:
        """Enrol the contacts who viewed the product lately, if its price fell far enough."""
        props = record.properties
        product, price = props.get("product_id"), to_cents(props.get("price"))
        before = to_cents(props.get("previous_price"))
        if product is None or price is None or not before or before <= price:
            return
        if (before - price) * 100 < trigger.price_drop.min_percent * before:
            return
        viewed = Event.properties["product_id"]
        same = [viewed.as_string() == str(product)]
        dialect = self.session.get_bind().dialect.name
        if dialect == "sqlite" and str(product).isdigit():
            # SQLite's json_extract keeps a JSON number a number; PostgreSQL's ->> gives text
            same.append(viewed.as_integer() == int(str(product)))
        viewers = set(
            self.session.scalars(
                select(Event.contact_id)
                .where(
                    Event.workspace_id == self.workspace_id,
                    Event.event == PRODUCT_VIEWED,
                    Event.timestamp >= record.timestamp - trigger.price_drop.viewed_within,
                    Event.timestamp <= record.timestamp,
                    or_(*same),
                )
                .distinct()
            )
        )
        contacts = self._contacts(viewers)
        runs = self._prefetch(contacts)
        for cid in sorted(contacts):
            self._enrol(
                flow,
                contacts[cid],
                trigger_props=props,
                message_id=record.message_id,
                active=runs[cid],
                via=n,
            )

    def _read_entries(self, contacts: Sequence[ContactState]) -> None:
        """Fill ``flow_entries`` from the runs, for contacts written before it was kept."""
        if not contacts:
            return
        entries: dict[str, dict[str, str]] = {c.id: {} for c in contacts}
        for cid, key, at in self.session.execute(
            select(FlowRun.contact_id, FlowRun.flow_key, func.max(FlowRun.entered_at))
            .where(FlowRun.workspace_id == self.workspace_id, FlowRun.contact_id.in_(entries))
            .group_by(FlowRun.contact_id, FlowRun.flow_key)
        ):
            entries[cid][key] = at.isoformat()
        for contact in contacts:
            contact.flow_entries, contact.dirty = entries[contact.id], True

    def _entries(self, contact: ContactState) -> dict[str, str]:
        """When the contact last entered each flow, {flow_key: ISO time}, kept on the contact."""
        if contact.flow_entries is None:
            self._read_entries([contact])
        assert contact.flow_entries is not None
        return contact.flow_entries

    def _entered(self, contact: ContactState, flow_key: str, at: datetime) -> None:
        entries = self._entries(contact)
        if entries.get(flow_key, "") < at.isoformat():
            contact.flow_entries, contact.dirty = {**entries, flow_key: at.isoformat()}, True

    # -- contact-watching triggers ----------------------------------------------------------
    def _watch(self, flow: LoadedFlow, contact: ContactState, open_runs: list[RunRow]) -> None:
        facts = self._facts(contact)
        for n, trigger in flow.watching:
            if isinstance(trigger, SegmentTrigger):
                self._segment(flow, n, trigger, contact, facts, open_runs)
            else:
                self._contact_date(flow, n, trigger, contact, facts, open_runs)

    def _segment(
        self,
        flow: LoadedFlow,
        n: int,
        trigger: SegmentTrigger,
        contact: ContactState,
        facts: Facts,
        open_runs: list[RunRow],
    ) -> None:
        inside = evaluate(trigger.where, facts)
        key = flow.key if n == 0 else f"{flow.key[:60]}:{n}"
        if inside == self._is_member(key, contact.id):
            return
        self._membership[(key, contact.id)] = inside
        if (trigger.when == "entered") == inside:
            started = self._enrol(flow, contact, trigger_props={"segment": trigger.segment}, via=n)
            if started is not None:
                open_runs.append(started)

    def _contact_date(
        self,
        flow: LoadedFlow,
        n: int,
        trigger: DateTrigger,
        contact: ContactState,
        facts: Facts,
        open_runs: list[RunRow],
    ) -> None:
        """Schedule a run at the contact's date plus the offset, and keep it there as the date moves."""
        starts_at = (
            resolve_date(trigger.moment, facts, contact.timezone)
            if evaluate(trigger.where, facts)
            else None
        )
        pending = next(
            (
                r
                for r in open_runs
                if r.flow_key == flow.key and r.status == "scheduled" and r.vars.get("via", 0) == n
            ),
            None,
        )
        if pending is not None:
            if starts_at is None:
                self._end(
                    pending, f"cancelled:{trigger.date} no longer applies", status="cancelled"
                )
            elif pending.wake_at != starts_at:
                pending.wake_at = starts_at
                self._log(pending, None, "scheduled", {"starts_at": starts_at.isoformat()})
        elif starts_at is not None and starts_at > self.now:
            started = self._enrol(
                flow,
                contact,
                trigger_props={trigger.date: starts_at.isoformat()},
                starts_at=starts_at,
                via=n,
            )
            if started is not None:
                open_runs.append(started)

    def _is_member(self, flow_key: str, contact_id: str) -> bool:
        key = (flow_key, contact_id)
        if key not in self._membership:
            self._membership[key] = (
                self.session.scalar(
                    select(FlowSegmentMember.contact_id).where(
                        FlowSegmentMember.workspace_id == self.workspace_id,
                        FlowSegmentMember.flow_key == flow_key,
                        FlowSegmentMember.contact_id == contact_id,
                    )
                )
                is not None
            )
            self._stored_membership[key] = self._membership[key]
        return self._membership[key]

    def _flush_segments(self) -> None:
        """Write the membership changes of this batch: inserts for who entered, deletes for who left."""
        changed = {k: v for k, v in self._membership.items() if self._stored_membership.get(k) != v}
        for (flow_key, contact_id), inside in sorted(changed.items()):
            if inside:
                self.session.add(
                    FlowSegmentMember(
                        workspace_id=self.workspace_id,
                        flow_key=flow_key,
                        contact_id=contact_id,
                        entered_at=self.now,
                    )
                )
            else:
                self.session.execute(
                    delete(FlowSegmentMember).where(
                        FlowSegmentMember.workspace_id == self.workspace_id,
                        FlowSegmentMember.flow_key == flow_key,
                        FlowSegmentMember.contact_id == contact_id,
                    )
                )
            self._stored_membership[(flow_key, contact_id)] = inside

    # -- manual enrolment -------------------------------------------------------------------------
    def enrol(
        self, flow_key: str, contact_id: str, properties: dict[str, Any] | None = None
    ) -> RunRow:
        """Enrol a contact by hand (API or CLI) under the flow's entry rules.

        Raises NotFound for an unknown flow or contact and Conflict, saying
        which rule, when the entry rules refuse.
        """
        flow = next(
            (f for f in CATALOG.active(self.session, self.workspace_id) if f.key == flow_key), None
        )
        if flow is None:
            raise NotFound(f"no active flow {flow_key!r} in this workspace", field="flow")
        contact = self._contacts({contact_id}).get(contact_id)
        if contact is None:
            raise NotFound(f"no contact {contact_id!r} in this workspace", field="contact_id")
        manual = next(
            (n for n, t in enumerate(flow.doc.triggers) if isinstance(t, ManualTrigger)), None
        )
        with self.session.no_autoflush:
            run = self._enrol(flow, contact, trigger_props=properties or {}, via=manual)
            self._drain()
        self._write()
        if run is None:
            raise Conflict(f"not enrolled: {self.refusal}", field="contact_id")
        return run

    def _recent(
        self, ids: Sequence[str], first: datetime, last: datetime, patterns: Sequence[EventTrigger]
    ) -> dict[str, list[tuple[str | None, datetime, dict[str, Any]]]]:
        """The contacts' events in the window any session/repeat trigger looks at, per contact."""
        if not patterns or not ids:
            return {}
        # properties are read only where a repeat trigger compares them
        repeats = sorted({e for t in patterns if t.repeat and t.repeat.same for e in t.events})
        span = max(
            max((t.repeat.within for t in patterns if t.repeat), default=timedelta()),
            max((t.session.lookback for t in patterns if t.session), default=timedelta()),
        )
        found: dict[str, list[tuple[str | None, datetime, dict[str, Any]]]] = defaultdict(list)
        for cid, name, at, props in self.session.execute(
            select(
                Event.contact_id,
                Event.event,
                Event.timestamp,
                case((Event.event.in_(repeats), Event.properties), else_=None),
            )
            .where(
                Event.workspace_id == self.workspace_id,
                Event.contact_id.in_(ids),
                Event.timestamp >= first - span,
                Event.timestamp <= last,
            )
            .order_by(Event.timestamp, Event.id)
        ):
            found[cid].append((name, at, props or {}))
        return found

    def _on_event(
        self, flow: LoadedFlow, run: RunRow, contact: ContactState, record: EventRecord
    ) -> None:
        doc = flow.doc
        name = record.event
        if run.status == "scheduled":
            trigger = doc.triggers[min(int(run.vars.get("via", 0)), len(doc.triggers) - 1)]
            unless = trigger.unless if isinstance(trigger, DateTrigger) else []
            if name in unless or (doc.goal and name == doc.goal.event):
                self._end(run, f"cancelled:{name}", status="cancelled")
            return
        if (
            doc.goal
            and name == doc.goal.event
            and evaluate(doc.goal.where, self._facts(contact, record.properties))
        ):
            run.revenue_cents = order_total_cents(record.properties)
            self._end(run, "converted", status="converted")
        elif doc.exit.on_reply and name == "Message Replied" and not run.holdout:
            self._end(run, "exited:reply", status="exited")
        elif doc.exit.on_opt_out and name == "Unsubscribed" and not run.holdout:
            self._end(run, "exited:opt_out", status="exited")
        elif name in doc.exit.events:
            self._end(run, f"exited:{name}", status="exited")
        elif doc.scoring and name in doc.scoring.events and not run.holdout:
            self._score(flow, run, contact, doc.scoring.events[name])
            if run.status == "active" and self._awaits(flow, run, record):
                self._advance(flow, run, contact, Wake("event", name, record.properties))
        elif self._awaits(flow, run, record) and not run.holdout:
            self._advance(flow, run, contact, Wake("event", name, record.properties))

    def _awaits(self, flow: LoadedFlow, run: RunRow, record: EventRecord) -> bool:
        """Whether the run waits for this very event (name and ``where``)."""
        if run.waiting != "event" or record.event not in (run.wait_event or "").split("|"):
            return False
        step = flow.doc.steps[run.position]
        return step.wait_for is None or evaluate(
            step.wait_for.where, Facts(properties=record.properties)
        )

    def _performed(self, run: RunRow) -> frozenset[str]:
        """Names of the events the contact has done since entering the run."""
        names = self.session.scalars(
            select(Event.event)
            .where(
                Event.workspace_id == self.workspace_id,
                Event.contact_id == run.contact_id,
                Event.timestamp >= run.entered_at,
                Event.event.is_not(None),
            )
            .distinct()
        ).all()
        return frozenset(n for n in names if n is not None)

    def _score(self, flow: LoadedFlow, run: RunRow, contact: ContactState, points: int) -> None:
        """Engagement points; crossing the threshold jumps the run to ``scoring.then`` once."""
        scoring = flow.doc.scoring
        assert scoring is not None
        self._add_score(contact, points)
        self._log(run, None, "score", {"points": points, "total": contact.score})
        if (
            scoring.threshold is not None
            and scoring.then
            and contact.score >= scoring.threshold
            and not run.vars.get("scoring_reached")
        ):
            run.vars = {**run.vars, "scoring_reached": True}
            run.position = flow.doc.index_of(scoring.then)
            run.waiting, run.wake_at, run.wait_event = None, None, None
            self._advance(flow, run, contact, START)

    # -- enrolment --------------------------------------------------------------------------
    def _enrol(
        self,
        flow: LoadedFlow,
        contact: ContactState,
        *,
        trigger_props: dict[str, Any] | None = None,
        message_id: str | None = None,
        active: Sequence[RunRow] | None = None,
        starts_at: datetime | None = None,
        via: int | None = None,
    ) -> RunRow | None:
        """Start a run (or schedule it, for ``starts_at`` ahead) if the entry rules allow it.

        None when they do not: already in the flow, re-entry too soon, or the
        entry filter says no.
        """
        doc = flow.doc
        if active is None:
            active = self._prefetch({contact.id: contact})[contact.id]
        if any(r.flow_key == flow.key and r.status in OPEN for r in active):
            self.refusal = "the contact is already in this flow"
            return None
        reentry = doc.entry.reentry
        if reentry != "always":
            entered = self._entries(contact).get(flow.key)
            last = datetime.fromisoformat(entered) if entered else None
            if last is not None and (reentry == "never" or self.now - last < reentry):
                self.refusal = (
                    "the flow allows one entry per contact"
                    if reentry == "never"
                    else f"re-entry is allowed from {(last + reentry).isoformat()}"
                )
                return None
        if not evaluate(doc.entry.filter, self._facts(contact, trigger_props)):
            self.refusal = "the contact does not pass the flow's entry filter"
            return None
        run = RunRow(
            id=new_id(),
            workspace_id=self.workspace_id,
            flow_version_id=flow.version_id,
            flow_key=flow.key,
            contact_id=contact.id,
            status="active",
            holdout=False,
            position=0,
            waiting=None,
            wake_at=None,
            wait_event=None,
            vars={"trigger": trigger_props or {}, "via": via},
            steps_run=0,
            log_seq=0,
            entered_at=self.now,
            ended_at=None,
            end_reason=None,
            revenue_cents=None,
            trigger_message_id=message_id,
        )
        start = doc.triggers[via].start if via is not None else None
        if start is not None:
            run.position = doc.index_of(start)
        self._keep([run])
        self._entered(contact, flow.key, self.now)
        if starts_at is not None and starts_at > self.now:
            run.status, run.waiting, run.wake_at = "scheduled", "timer", starts_at
            self._log(run, None, "scheduled", {"starts_at": starts_at.isoformat()})
        else:
            self._start(flow, run, contact)
        return run

    def _start(self, flow: LoadedFlow, run: RunRow, contact: ContactState) -> None:
        """Enter the run: the holdout draw, then its first steps (or the control group's wait)."""
        doc = flow.doc
        run.status, run.entered_at = "active", self.now
        self._entered(contact, flow.key, self.now)
        run.holdout = split_bucket(contact.id, flow.key, "holdout") < doc.entry.holdout
        run.waiting, run.wake_at, run.wait_event = None, None, None
        self._log(run, None, "enter", {"holdout": run.holdout})
        if run.holdout:
            run.waiting = "timer"
            run.wake_at = self.now + (
                doc.exit.after or (doc.goal.window if doc.goal else HOLDOUT_WAIT)
            )
        else:
            self._advance(flow, run, contact, START)

    def _add_score(self, contact: ContactState, points: int) -> None:
        """Change the score; crossing a score trigger's threshold upwards enrols in that flow."""
        before = contact.score
        change_contact(contact, now=self.now, score_delta=points)
        for flow in CATALOG.active(self.session, self.workspace_id):
            for n, trigger in enumerate(flow.doc.triggers):
                if (
                    isinstance(trigger, ScoreTrigger)
                    and before < trigger.score_above <= contact.score
                ):
                    self._crossed.append((flow, n, contact))

    def _lead_score_crossings(self, flows: Sequence[LoadedFlow], before: dict[str, int]) -> None:
        """Lead scoring changed these scores in this batch: crossing a score trigger upwards enrols."""
        if not before:
            return
        contacts = self._contacts(set(before))
        for flow in flows:
            for n, trigger in enumerate(flow.doc.triggers):
                if isinstance(trigger, ScoreTrigger):
                    for cid in sorted(contacts):
                        if before[cid] < trigger.score_above <= contacts[cid].score:
                            self._crossed.append((flow, n, contacts[cid]))

    def _drain(self) -> None:
        """Enrol the contacts whose score crossed a threshold (which may move scores again)."""
        for _ in range(100):  # a cycle of flows scoring each other stops here
            if not self._crossed:
                return
            pending, self._crossed = self._crossed, []
            for flow, n, contact in pending:
                self._enrol(flow, contact, trigger_props={"score": contact.score}, via=n)

    # -- predictions (flow 12's date) --------------------------------------------------------------
    def _facts(
        self,
        contact: ContactState,
        properties: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
    ) -> Facts:
        return contact_facts(
            contact, properties, variables, now=self.now, next_order=self._next_order
        )

    def _next_order(self, contact: ContactState) -> datetime | None:
        """The current last order plus the stored predicted interval, else the heuristic.

        Intervals are read for every contact in the batch at once, the first time a
        condition or a step asks for ``expected_next_order_at``: one query per batch
        then, and none when no flow reads the fact.
        """
        if contact.id not in self._intervals:
            wanted = (self._batch.states.keys() | {contact.id}) - self._intervals.keys()
            self._intervals.update(predicted_intervals(self.session, self.workspace_id, wanted))
        gap = self._intervals.get(contact.id)
        if gap is None or contact.last_order_at is None:
            return expected_next_order_at(contact)
        return contact.last_order_at + gap

    # -- timers ---------------------------------------------------------------------------------
    def wake(self, runs: Sequence[RunRow]) -> int:
        """Advance runs whose timer is due (claimed with :func:`load_runs`); returns how many moved."""
        self._keep(runs)
        contacts = self._contacts({r.contact_id for r in runs})
        with self.session.no_autoflush:
            self._wake(runs, contacts)
            self._drain()
        self._write()
        return len(runs)

    def _wake(self, runs: Sequence[RunRow], contacts: dict[str, ContactState]) -> None:
        for run in runs:
            flow = CATALOG.version(self.session, run.flow_version_id)
            if run.status == "scheduled":
                self._start(flow, run, contacts[run.contact_id])
                continue
            if run.holdout:
                self._end(run, "completed", status="completed")
                continue
            after = flow.doc.exit.after
            if after is not None and self.now >= run.entered_at + after:
                self._end(run, "expired", status="completed")
                continue
            self._advance(flow, run, contacts[run.contact_id], TIMER)

    # -- internals ------------------------------------------------------------------------------
    def _contacts(self, ids: set[str]) -> dict[str, ContactState]:
        return self._batch.contacts(ids)

    def _advance(self, flow: LoadedFlow, run: RunRow, contact: ContactState, wake: Wake) -> None:
        state = RunState(
            position=run.position,
            entered_at=run.entered_at,
            waiting=run.waiting,
            wake_at=run.wake_at,
            wait_event=run.wait_event,
            vars=run.vars,
            steps_run=run.steps_run,
        )
        props = wake.properties if wake.properties is not None else run.vars.get("trigger", {})
        outcome = advance(
            flow.doc,
            state,
            replace(
                self._facts(contact, props, run.vars),
                performed=_Lazy(lambda: self._performed(run)) if flow.uses_history else frozenset(),
            ),
            now=self.now,
            wake=wake,
            contact_id=contact.id,
            timezone=contact.timezone,
        )
        for decision in outcome.decisions:
            self._apply(flow, run, contact, decision)
        new = outcome.state
        run.position, run.vars, run.steps_run = new.position, new.vars, new.steps_run
        if run.status == "active":
            run.waiting, run.wake_at, run.wait_event = new.waiting, new.wake_at, new.wait_event
            if flow.doc.exit.after is not None and run.wake_at is not None:
                run.wake_at = min(run.wake_at, run.entered_at + flow.doc.exit.after)

    def _apply(
        self, flow: LoadedFlow, run: RunRow, contact: ContactState, decision: Decision
    ) -> None:
        ws, now = self.workspace_id, self.now
        if isinstance(decision, Finish):
            self._end(run, decision.reason, status="completed", step_id=decision.step_id)
            return
        if isinstance(decision, Sleep | AwaitEvent):
            detail: dict[str, Any] = {"until": decision.until.isoformat()}
            if isinstance(decision, AwaitEvent):
                detail["event"] = decision.event
            self._log(run, decision.step_id, "wait", detail)
            return
        seq = self._log(run, decision.step_id, _ACTION[type(decision)], _detail(decision))
        key = f"{run.id}:{seq}"
        if isinstance(decision, IssueCoupon):
            # the code is fixed now, so the messages that follow can quote it
            run.vars = {
                **run.vars,
                "coupon": {
                    "code": coupon_code(decision.prefix, key),
                    "discount": decision.discount,
                    "expires_at": decision.expires_at.isoformat(),
                },
            }
        if isinstance(decision, UpdateContact):
            change_contact(
                contact,
                now=now,
                tag=decision.tag,
                untag=decision.untag,
                traits=decision.trait,
                stage=decision.stage,
                owner=decision.owner,
            )
        elif isinstance(decision, AddScore):
            self._add_score(contact, decision.points)
        else:
            kind = _ACTION[type(decision)]
            channel = decision.channel if isinstance(decision, SendMessage) else None
            payload = {
                **_detail(decision),
                "flow": flow.key,
                "trigger": run.vars.get("trigger", {}),
                "coupon": run.vars.get("coupon"),
            }
            self._effects.append(
                {
                    "workspace_id": ws,
                    "contact_id": contact.id,
                    "kind": kind,
                    "idempotency_key": key,
                    "payload": payload,
                    "run_id": run.id,
                    "step_id": decision.step_id,
                    "channel": channel,
                    "due_at": now,
                }
            )

    def _end(self, run: RunRow, reason: str, *, status: str, step_id: str | None = None) -> None:
        run.status, run.end_reason, run.ended_at = status, reason, self.now
        run.waiting, run.wake_at, run.wait_event = None, None, None
        self._log(run, step_id, "exit", {"reason": reason})

    def _log(self, run: RunRow, step_id: str | None, action: str, detail: dict[str, Any]) -> int:
        run.log_seq += 1
        self._steps.append((run.id, run.log_seq, step_id, action, detail))
        return run.log_seq

    def _write(self) -> None:
        """Contacts (the ORM flush) and runs first, then their step log and effects, in bulk."""
        self.session.flush()
        self._batch.flush(self.session.get_bind().dialect.name)
        save_runs(self.session, self._runs)
        if self._steps:
            bulk = Bulk(self.session.get_bind().dialect.name)
            at = bulk.time(self.now)
            bulk.insert(
                self.session.connection(),
                "flow_run_steps",
                ("workspace_id", "run_id", "seq", "step_id", "action", "at", "detail"),
                [
                    (self.workspace_id, run_id, seq, step_id, action, at, bulk.json(detail))
                    for run_id, seq, step_id, action, detail in self._steps
                ],
            )
            self._steps = []
        if self._effects:
            enqueue_many(self.session, self._effects)
            self._effects = []


_ACTION: dict[type, str] = {
    SendMessage: "send",
    UpdateContact: "update",
    AddScore: "score",
    CreateTask: "task",
    IssueCoupon: "coupon",
    CallWebhook: "webhook",
    NotifyTeam: "notify",
}


def _detail(decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in decision.__dataclass_fields__:
        if name == "step_id":
            continue
        value = getattr(decision, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return {k: v for k, v in out.items() if v is not None}
