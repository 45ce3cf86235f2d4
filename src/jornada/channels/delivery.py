"""Deliver queued messages through the workspace's provider, outside any write transaction.

Dispatch (gate + render) leaves a message ``queued`` in the transaction that
took its outbox item. :func:`deliver_due` then works in three steps:

1. **claim** (a short write transaction): due ``queued`` messages become
   ``sending`` with a lease (``next_attempt_at`` = now + :data:`LEASE`), so no
   other worker takes them; ``SKIP LOCKED`` on PostgreSQL, the writer lock on SQLite;
2. **send**, with no transaction open: each (workspace, channel) group over up
   to ``Courier.connections`` connections in parallel;
3. **record** (a short write transaction): ``sent`` with the time and the
   provider's message id; a transient error goes back to ``queued`` with an
   exponential backoff and jitter (``failed`` after :data:`MAX_ATTEMPTS`); a
   permanent one is ``failed`` with the reason and, for a rejected address, a
   ``hard_bounce`` suppression; an unreachable provider leaves its messages
   ``queued`` (no attempt counted) and opens or extends an integration incident,
   which the next successful send closes.

A provider's limits (``channels.pacing``): the claim takes no more of a group
than its ``daily_cap`` leaves for the day (the workspace's day); once the cap
is reached the group's other due messages stay ``queued`` until the next day
starts, ``error`` saying so, no attempt counted. Its ``rate_per_second`` bounds
the group's share of a pass, and one pacer shared by the group's connections
spaces the sends.

A worker killed between send and record leaves messages ``sending``; when the
lease ends, a transactional message is sent again (at least once) and a
marketing one is failed (at most once), as the architecture's outbox rule says.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, case, func, or_, select
from sqlalchemy.orm import Session

from jornada.channels.connection import (
    Failed,
    Outcome,
    Report,
    Retry,
    Sent,
    Transport,
    Unavailable,
    send_all,
)
from jornada.channels.email.compose import Outbound
from jornada.channels.email.processes import SmtpProcesses
from jornada.channels.email.smtp import SmtpTransport
from jornada.channels.errors import (
    ProviderUnavailable,
)
from jornada.channels.health import record_outage, record_recovery
from jornada.channels.held import release
from jornada.channels.history import suppress
from jornada.channels.models import Message
from jornada.channels.pacing import Pacer, Pacers, claim_budget, day_bounds
from jornada.channels.providers.secrets import Keyring, keyring_for
from jornada.channels.providers.settings import ProviderConfig, get_provider
from jornada.channels.push.send import WebPushTransport
from jornada.channels.twilio.send import TwilioTransport
from jornada.channels.webhook.send import WebhookTransport
from jornada.channels.whatsapp.send import WhatsAppCloudTransport
from jornada.clock import Clock
from jornada.config import Settings
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import JornadaError
from jornada.workspaces import Workspace

_log = logging.getLogger("jornada.delivery")
BATCH = 500  # messages claimed per pass
LEASE = timedelta(minutes=5)  # a claimed message is another worker's to take after this
MAX_ATTEMPTS = 8  # tries the provider answered "later" to before the message fails
RETRY_BASE, RETRY_CAP = timedelta(minutes=1), timedelta(hours=6)  # 1, 2, 4 … minutes, at most 6 h
OUTAGE_BASE, OUTAGE_CAP = timedelta(seconds=30), timedelta(minutes=15)  # while a provider is down


@dataclass(frozen=True)
class Courier:
    """What delivery needs besides the database: the keys, the public URL, parallelism."""

    keys: Keyring
    public_url: str = "http://127.0.0.1:8000"
    connections: int = 4  # parallel connections per provider and pass
    timeout: float = 30.0  # seconds a provider may take to answer
    #: rate limits' pacers, kept across passes (tests give them a fake clock and sleep)
    pacers: Pacers = field(default_factory=Pacers, compare=False)
    #: set by :func:`deliver_due`: for transports that read their recipients (push subscriptions)
    database: Database | None = field(default=None, compare=False)
    #: flows' webhooks may call loopback and private addresses (JORNADA_WEBHOOKS_ALLOW_PRIVATE)
    private_webhooks: bool = False
    #: unpaced SMTP from these child processes (JORNADA_DELIVERY_PROCESSES; channels.email.processes)
    senders: SmtpProcesses | None = field(default=None, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str | None = None) -> Courier:
        return cls(
            keys=keyring_for(settings, database_url),
            public_url=settings.public_url.rstrip("/"),
            private_webhooks=settings.webhooks_allow_private,
            senders=SmtpProcesses(cls.connections) if settings.delivery_processes else None,
        )


TransportFactory = Callable[[ProviderConfig, Courier], Transport]


def _smtp(config: ProviderConfig, courier: Courier) -> Transport:
    return SmtpTransport(
        dict(config.options),
        dict(config.secrets),
        keys=courier.keys,
        public_url=courier.public_url,
        timeout=courier.timeout,
    )


def _webpush(config: ProviderConfig, courier: Courier) -> Transport:
    if courier.database is None:
        raise ProviderUnavailable("push delivery needs the database (its subscriptions)")
    return WebPushTransport(
        dict(config.options),
        dict(config.secrets),
        database=courier.database,
        timeout=courier.timeout,
    )


def _webhook(config: ProviderConfig, courier: Courier) -> Transport:
    return WebhookTransport(
        dict(config.secrets), timeout=courier.timeout, allow_private=courier.private_webhooks
    )


def _whatsapp_cloud(config: ProviderConfig, courier: Courier) -> Transport:
    return WhatsAppCloudTransport(
        dict(config.options),
        dict(config.secrets),
        base_url=config.base_url,
        timeout=courier.timeout,
    )


def _twilio(config: ProviderConfig, courier: Courier) -> Transport:
    return TwilioTransport(
        dict(config.options),
        dict(config.secrets),
        status_callback=f"{courier.public_url}/webhooks/twilio/{config.workspace_id}/status",
        base_url=config.base_url,
        timeout=courier.timeout,
    )


#: How each provider kind sends; a kind missing here keeps its messages queued.
TRANSPORTS: dict[str, TransportFactory] = {
    "smtp": _smtp,
    "whatsapp_cloud": _whatsapp_cloud,
    "webpush": _webpush,
    "webhook": _webhook,
    "twilio": _twilio,
}


def backoff(attempt: int, base: timedelta, cap: timedelta) -> timedelta:
    """Exponential backoff with "equal jitter": between half and all of ``base · 2^(attempt-1)``."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=delay.total_seconds() * random.uniform(0.5, 1.0))


# -- the three steps -----------------------------------------------------------------------
@dataclass
class _Group:
    config: ProviderConfig | None
    messages: list[Outbound]
    problem: str = "no provider is configured for this channel any more"


def deliver_due(database: Database, now: datetime, courier: Courier, *, limit: int = BATCH) -> int:
    """Send the messages due at ``now``; returns how many were claimed."""
    courier = _bound(courier, database)
    with ThreadPoolExecutor(courier.connections, thread_name_prefix="jornada-send") as pool:
        batch = _start(database, now, courier, pool, limit)
        return 0 if batch is None else _finish(database, batch)


def deliver_continuously(
    database: Database,
    clock: Clock,
    courier: Courier,
    *,
    stop: threading.Event,
    wake: threading.Event,
    idle_seconds: float,
    limit: int = BATCH,
) -> None:
    """The worker's courier loop, until ``stop``: each batch is claimed while the one
    before is on the wire, and recorded while the next one is, so the connections
    never wait for the database (two batches out at most). It sleeps up to
    ``idle_seconds`` when nothing is due, or until ``wake`` is set."""
    courier = _bound(courier, database)
    out: deque[_Batch] = deque()
    with _threads(courier) as pool:
        while not stop.is_set():
            batch = None
            try:
                batch = _start(database, clock.now(), courier, pool, limit)
                if batch is not None:
                    out.append(batch)
                # the older batch is recorded once the newer one is being sent
                while out and (batch is None or len(out) > 1 or out[0].done()):
                    _finish(database, out.popleft())
            except Exception:  # a database hiccup must not stop delivery for good
                _log.exception("delivery pass failed; trying again")
                stop.wait(idle_seconds)  # not at once: the database may need a moment
                continue
            if not out and (batch is None or batch.size < limit):
                wake.wait(idle_seconds)
                wake.clear()
        while out:  # what is on the wire is recorded before the worker stops
            _finish(database, out.popleft())


def _bound(courier: Courier, database: Database) -> Courier:
    return courier if courier.database is not None else replace(courier, database=database)


@contextmanager
def _threads(courier: Courier) -> Iterator[ThreadPoolExecutor]:
    """The connections' threads; the sender processes, if any, end with them."""
    try:
        with ThreadPoolExecutor(courier.connections, thread_name_prefix="jornada-send") as pool:
            yield pool
    finally:
        if courier.senders is not None:
            courier.senders.close()


@dataclass
class _Batch:
    """One claim's messages: their groups, attempts, and the connections' jobs sending them."""

    now: datetime
    groups: dict[tuple[str, str], _Group]
    attempts: dict[int, int]
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    failures: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    jobs: list[tuple[tuple[str, str], Future[Report]]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(g.messages) for g in self.groups.values())

    def done(self) -> bool:
        return all(job.done() for _, job in self.jobs)


def _start(
    database: Database, now: datetime, courier: Courier, pool: ThreadPoolExecutor, limit: int
) -> _Batch | None:
    """Claim due messages and hand each group to up to ``courier.connections`` connections
    in ``pool``. They share the group's queue, so a slow connection holds up no other;
    unpaced SMTP with ``courier.senders`` goes from child processes, a share each."""
    with database.write() as session:
        groups, attempts = _claim(session, database, now, courier, limit)
    if not groups:
        return None
    batch = _Batch(now, groups, attempts)
    for key, group in groups.items():
        if group.config is None or group.config.provider not in TRANSPORTS:
            problem = group.problem if group.config is None else "no transport for the provider"
            for message in group.messages:
                batch.outcomes[message.id] = Unavailable(problem)
            batch.failures[key].append(problem)
            continue
        config, factory = group.config, TRANSPORTS[group.config.provider]
        pacer = courier.pacers.get(key, config.rate_per_second)  # shared by the connections
        connections = min(courier.connections, len(group.messages))
        if courier.senders is not None and config.provider == "smtp" and pacer is None:
            for share in range(connections):
                job = pool.submit(
                    courier.senders.run,
                    config.options,
                    config.secrets,
                    group.messages[share::connections],
                    now,
                    keys=courier.keys,
                    public_url=courier.public_url,
                    timeout=courier.timeout,
                )
                batch.jobs.append((key, job))
            continue
        queue = deque(group.messages)
        for _ in range(connections):
            job = pool.submit(_send_share, factory, config, courier, queue, now, pacer)
            batch.jobs.append((key, job))
    return batch


def _finish(database: Database, batch: _Batch) -> int:
    """Wait for the batch's jobs and record every outcome; returns how many messages."""
    for key, job in batch.jobs:
        result, connection_errors = job.result()
        batch.outcomes.update(result)
        batch.failures[key] += connection_errors
    for key, group in batch.groups.items():
        for message in group.messages:
            if message.id not in batch.outcomes:  # its connection met the provider down
                batch.outcomes[message.id] = Unavailable(batch.failures[key][-1])
    with database.write() as session:
        _record(session, batch.groups, batch.outcomes, batch.attempts, batch.failures, batch.now)
    return batch.size


def _claim(
    session: Session, database: Database, now: datetime, courier: Courier, limit: int
) -> tuple[dict[tuple[str, str], _Group], dict[int, int]]:
    """Lease due messages, group by group within each provider's limits.

    A marketing message whose earlier lease lapsed fails instead. Groups are
    taken oldest first, so a large queue does not starve the others.
    """
    due = (
        or_(Message.status == "queued", Message.status == "sending"),
        Message.next_attempt_at <= now,
    )
    pending = session.execute(
        select(Message.workspace_id, Message.channel)
        .where(*due)
        .group_by(Message.workspace_id, Message.channel)
        .order_by(func.min(Message.next_attempt_at))
    ).all()
    zones = dict(
        session.execute(
            select(Workspace.id, Workspace.timezone).where(
                Workspace.id.in_(sorted({w for w, _ in pending}))
            )
        ).all()
    )
    groups: dict[tuple[str, str], _Group] = {}
    attempts: dict[int, int] = {}
    leased: list[tuple[_Group, list[Row[Any]]]] = []
    for workspace_id, channel in pending:
        if limit <= 0:
            break
        key = (workspace_id, channel)
        try:
            group = _Group(get_provider(session, workspace_id, channel, keys=courier.keys), [])
        except JornadaError as exc:  # e.g. secrets saved under another JORNADA_SECRET_KEY
            group = _Group(None, [], exc.message)
        cap = group.config.daily_cap if group.config is not None else None
        day_start, next_day = day_bounds(now, zones.get(workspace_id, "UTC"))
        used = _used_today(session, group.config, day_start, now) if cap is not None else 0
        budget = claim_budget(
            limit=limit,
            daily_cap=cap,
            used_today=used,
            rate_per_second=group.config.rate_per_second if group.config is not None else None,
        )
        rows = _due_rows(session, database, key, due, budget) if budget > 0 else []
        taken = _lease(session, rows, attempts, now)
        limit -= len(rows)
        if taken:
            groups[key] = group
            leased.append((group, taken))
        if cap is not None and used + len(taken) >= cap:
            # the leased rows are ``sending`` already (plain UPDATEs): the rest are left
            _defer_to(session, key, now, next_day, f"daily cap of {cap} reached")
    if leased:
        _add_messages(session, leased)
    return groups, attempts


def _used_today(
    session: Session, config: ProviderConfig | None, day_start: datetime, now: datetime
) -> int:
    """The group's messages sent through its provider since ``day_start``, or out with a worker."""
    if config is None:
        return 0
    group = (Message.workspace_id == config.workspace_id, Message.channel == config.channel)
    sent = session.scalar(
        select(func.count()).where(
            *group, Message.provider == config.provider, Message.sent_at >= day_start
        )
    )
    sending = session.scalar(
        select(func.count()).where(
            *group, Message.status == "sending", Message.next_attempt_at > now
        )
    )
    return int(sent or 0) + int(sending or 0)


#: What a claim reads of a message: the snapshot a transport sends, and what the lease needs.
_CLAIMED = (
    Message.id,
    Message.workspace_id,
    Message.contact_id,
    Message.channel,
    Message.purpose,
    Message.template,
    Message.to_address,
    Message.subject,
    Message.body,
    Message.text_body,
    Message.status,
    Message.attempts,
)


def _due_rows(
    session: Session, database: Database, key: tuple[str, str], due: Any, budget: int
) -> list[Row[Any]]:
    """Up to ``budget`` of the group's due messages; transactional ones first (a cap hits
    marketing before an order confirmation), then the oldest.

    Plain rows, not ORM objects: the lease is two set-based UPDATEs (:func:`_lease`).
    """
    query = (
        select(*_CLAIMED)
        .where(Message.workspace_id == key[0], Message.channel == key[1], *due)
        .order_by(
            case((Message.purpose == "transactional", 0), else_=1),
            Message.next_attempt_at,
            Message.id,
        )
        .limit(budget)
    )
    if not database.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    return list(session.execute(query))


def _lease(
    session: Session, rows: Sequence[Row[Any]], attempts: dict[int, int], now: datetime
) -> list[Row[Any]]:
    """Mark ``rows`` ``sending`` (an attempt each); returns those leased (lapsed marketing fails).

    The rows are locked by the claim (``FOR UPDATE`` / SQLite's writer lock), so the
    attempt counted in SQL (``attempts + 1``) is the one noted in ``attempts``.
    """
    table = cast(Table, Message.__table__)
    # the worker that held it died after (maybe) sending: at most once for marketing
    lapsed = [r.id for r in rows if r.status == "sending" and r.purpose == "marketing"]
    taken = [r for r in rows if not (r.status == "sending" and r.purpose == "marketing")]
    if lapsed:
        session.execute(
            table.update()
            .where(table.c.id.in_(lapsed))
            .values(
                status="failed",
                failed_at=now,
                error="interrupted while sending; marketing is not sent twice",
            )
        )
    if taken:
        session.execute(
            table.update()
            .where(table.c.id.in_([r.id for r in taken]))
            .values(status="sending", next_attempt_at=now + LEASE, attempts=table.c.attempts + 1)
        )
    for row in taken:
        attempts[row.id] = row.attempts + 1
    return taken


def _add_messages(session: Session, leased: Sequence[tuple[_Group, list[Row[Any]]]]) -> None:
    """Each group's leased rows as :class:`Outbound`, with the contact's locale (one query)."""
    ids = sorted({r.contact_id for _, rows in leased for r in rows})
    query = select(Contact.id, Contact.locale).where(Contact.id.in_(ids))
    locales: dict[str, str | None] = {row[0]: row[1] for row in session.execute(query)}
    for group, rows in leased:
        group.messages.extend(
            Outbound(
                id=row.id,
                workspace_id=row.workspace_id,
                contact_id=row.contact_id,
                channel=row.channel,
                purpose=row.purpose,
                template=row.template,
                to=row.to_address or "",
                subject=row.subject,
                body=row.body,
                text=row.text_body,
                locale=locales.get(row.contact_id),
            )
            for row in rows
        )


def _defer_to(
    session: Session, key: tuple[str, str], now: datetime, until: datetime, reason: str
) -> None:
    """The group's other due ``queued`` messages wait until ``until``; not an attempt."""
    table = cast(Table, Message.__table__)
    session.execute(
        table.update()
        .where(
            table.c.workspace_id == key[0],
            table.c.channel == key[1],
            table.c.status == "queued",
            table.c.next_attempt_at <= now,
        )
        .values(next_attempt_at=until, error=reason[:500])
    )


def _send_share(
    factory: TransportFactory,
    config: ProviderConfig,
    courier: Courier,
    queue: deque[Outbound],
    now: datetime,
    pacer: Pacer | None = None,
) -> Report:
    """One sending thread's connection: :func:`send_all` over a new transport."""
    return send_all(factory(config, courier), queue, now, pacer)


def _record(
    session: Session,
    groups: Mapping[tuple[str, str], _Group],
    outcomes: Mapping[int, Outcome],
    attempts: Mapping[int, int],
    failures: Mapping[tuple[str, str], list[str]],
    now: datetime,
) -> None:
    """Write each message's outcome, the bounces' suppressions and the incidents."""
    for key, group in groups.items():
        errors = failures.get(key, [])
        provider = group.config.provider if group.config is not None else "none"
        if errors:
            incident = record_outage(session, *key, provider, errors[-1], now, failures=len(errors))
            outage_delay = backoff(incident.failures, OUTAGE_BASE, OUTAGE_CAP)
        else:
            record_recovery(session, *key, now)
            outage_delay = timedelta(0)
        changes: list[dict[str, Any]] = []
        for message in group.messages:
            outcome = outcomes[message.id]
            tries = attempts[message.id]
            change: dict[str, Any] = {"id": message.id}
            if isinstance(outcome, Sent):
                change.update(
                    status="sent",
                    sent_at=now,
                    provider_message_id=outcome.provider_id[:255],
                    next_attempt_at=None,
                    error=None,
                )
            elif isinstance(outcome, Unavailable):
                change.update(
                    status="queued",
                    attempts=tries - 1,  # the provider never saw it: not an attempt
                    next_attempt_at=now + outage_delay,
                    error=outcome.error[:500],
                )
            elif isinstance(outcome, Retry) and tries < MAX_ATTEMPTS:
                change.update(
                    status="queued",
                    next_attempt_at=now + backoff(tries, RETRY_BASE, RETRY_CAP),
                    error=outcome.error[:500],
                )
            else:
                error = outcome.error
                if isinstance(outcome, Retry):
                    error = f"gave up after {tries} attempts: {error}"
                change.update(
                    status="failed", failed_at=now, next_attempt_at=None, error=error[:500]
                )
                if isinstance(outcome, Failed) and message.to:
                    reason = outcome.suppress or ("hard_bounce" if outcome.bounce else None)
                    if reason is not None:  # the address goes on the suppression list
                        suppress(
                            session,
                            message.workspace_id,
                            message.channel,
                            message.to,
                            reason,
                            now,
                        )
            changes.append(change)
        _apply(session, changes)
        # a status the provider reported before this record was held: it applies now
        release(session, *key, [c["provider_message_id"] for c in changes if "sent_at" in c])


def _apply(session: Session, changes: list[dict[str, Any]]) -> None:
    """One executemany per set of changed columns."""
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for change in changes:
        by_shape[tuple(sorted(change))].append(change)
    table = cast(Table, Message.__table__)
    for rows in by_shape.values():
        values: dict[str, Any] = {k: bindparam(k) for k in rows[0] if k != "id"}
        if rows[0].get("status") == "sent":
            # a status callback may have come before this record (the provider answers
            # the callback URL at once): it is never moved back, its error never erased
            sending = or_(table.c.status == "queued", table.c.status == "sending")
            values |= {
                "status": case((sending, "sent"), else_=table.c.status),
                "error": case((sending, None), else_=table.c.error),
                "sent_at": func.coalesce(table.c.sent_at, bindparam("sent_at")),
            }
        session.execute(
            table.update().where(table.c.id == bindparam("_id")).values(values),
            [{**{k: v for k, v in r.items() if k != "id"}, "_id": r["id"]} for r in rows],
        )
