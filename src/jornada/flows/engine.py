"""Pure flow step evaluation; no I/O.

``advance(flow, state, facts, now, wake)`` runs steps from the run's position
until the run has to wait or ends, and returns the decisions taken on the way
plus the new state. The same function runs live and in the simulator; only
the clock differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
    END,
    BusinessHours,
    FlowDocument,
    Step,
    WaitUntil,
    WaitUntilDate,
)

MAX_STEPS_PER_ADVANCE = 200  # a flow that loops without waiting is stopped, not spun forever
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Wake:
    """Why the run is being advanced now."""

    kind: str  # "start" | "timer" | "event"
    event: str | None = None
    properties: dict[str, Any] | None = None


START = Wake("start")
TIMER = Wake("timer")


@dataclass(frozen=True)
class Outcome:
    decisions: list[Decision]
    state: RunState

    @property
    def finished(self) -> Finish | None:
        last = self.decisions[-1] if self.decisions else None
        return last if isinstance(last, Finish) else None


def split_bucket(contact_id: str, flow_key: str, step_id: str) -> float:
    """A stable number in [0, 100) for a contact at a split: the same contact always takes the same arm."""
    digest = hashlib.sha256(f"{flow_key}:{step_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def next_local_time(now: datetime, zone: str, wait: WaitUntil) -> datetime:
    """The next moment (after now) that is ``wait.time`` in ``zone`` on an allowed weekday."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    at = _clock(wait.time)
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, at, tzinfo=tz)
        if candidate <= local:
            continue
        if wait.weekdays and _WEEKDAYS[candidate.weekday()] not in wait.weekdays:
            continue
        return candidate.astimezone(now.tzinfo)
    raise ValueError("no allowed weekday")  # unreachable: a week always has one


def business_hours_start(now: datetime, zone: str, hours: BusinessHours) -> datetime | None:
    """None when ``now`` is inside business hours in ``zone``; else when they next begin."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    start, end = _clock(hours.start), _clock(hours.end)
    if _WEEKDAYS[local.weekday()] in hours.weekdays and start <= local.time() < end:
        return None
    for days in range(8):
        day = (local + timedelta(days=days)).date()
        candidate = datetime.combine(day, start, tzinfo=tz)
        if candidate > local and _WEEKDAYS[candidate.weekday()] in hours.weekdays:
            return candidate.astimezone(now.tzinfo)
    raise ValueError("business hours name no weekday")


def _date_value(path: str, facts: Facts) -> Any:
    source, _, rest = path.partition(".")
    root: Any = {
        "trigger": facts.vars.get("trigger", {}),
        "fact": facts.facts,
        "var": facts.vars,
        "prop": facts.properties,
        "trait": facts.traits,
    }.get(source)
    for part in rest.split("."):
        root = root.get(part) if isinstance(root, Mapping) else None
    return root


def resolve_date(wait: WaitUntilDate, facts: Facts, zone: str) -> datetime | None:
    """The moment a date-relative wait ends, in UTC; None if the run has no such date.

    A date without time (``2026-11-25``) is that day in the contact's zone;
    ``time`` then sets the local time of day after the offset is applied.
    """
    value = _date_value(wait.date, facts)
    tz = ZoneInfo(zone)
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str) and len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(0, 0), tzinfo=tz)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
        else:
            return None
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    moment = (moment + wait.offset).astimezone(tz)
    if wait.time is not None:
        moment = datetime.combine(moment.date(), _clock(wait.time), tzinfo=tz)
    return moment.astimezone(UTC)


def advance(
    flow: FlowDocument,
    state: RunState,
    facts: Facts,
    *,
    now: datetime,
    wake: Wake,
    contact_id: str,
    timezone: str,
) -> Outcome:
    """Run steps until the run waits or ends."""
    state = replace(state, vars=dict(state.vars))
    decisions: list[Decision] = []
    position = state.position

    if state.waiting == "event":
        step = flow.steps[position]
        assert step.wait_for is not None
        if wake.kind == "event" and wake.event in step.wait_for.events:
            state.vars[step.id] = {"status": "received", "properties": wake.properties or {}}
            position += 1
        elif wake.kind == "timer":
            state.vars[step.id] = {"status": "timeout"}
            target = step.wait_for.on_timeout
            if target == END:
                return Outcome([Finish("timeout", step.id)], _ended(state, position))
            position = flow.index_of(target)
        else:
            return Outcome([], state)
    elif state.waiting == "timer":
        if wake.kind != "timer":
            return Outcome([], state)
        position += 1
    state.waiting, state.wake_at, state.wait_event = None, None, None
    facts = replace(facts, vars=state.vars)

    for _ in range(MAX_STEPS_PER_ADVANCE):
        if position >= len(flow.steps):
            decisions.append(Finish("completed"))
            return Outcome(decisions, _ended(state, position))
        step = flow.steps[position]
        state.steps_run += 1
        jump = _run_step(flow, step, facts, now, contact_id, timezone, decisions)
        if isinstance(jump, _Wait):
            state.position = position
            state.waiting, state.wake_at, state.wait_event = jump.kind, jump.until, jump.event
            return Outcome(decisions, state)
        if jump == END:
            if not decisions or not isinstance(decisions[-1], Finish):
                decisions.append(Finish("completed", step.id))
            return Outcome(decisions, _ended(state, position))
        position = position + 1 if jump is None else flow.index_of(jump)
    decisions.append(Finish("exited:loop", flow.steps[position].id))
    return Outcome(decisions, _ended(state, position))


@dataclass(frozen=True)
class _Wait:
    kind: str
    until: datetime
    event: str | None = None


def _ended(state: RunState, position: int) -> RunState:
    state.position = position
    state.waiting, state.wake_at, state.wait_event = None, None, None
    return state


def _run_step(
    flow: FlowDocument,
    step: Step,
    facts: Facts,
    now: datetime,
    contact_id: str,
    timezone: str,
    decisions: list[Decision],
) -> str | _Wait | None:
    """Do one step; return where to go: None (next), a step id, END, or a wait."""
    sid = step.id
    if step.wait is not None:
        until = now + step.wait
        decisions.append(Sleep(sid, until))
        return _Wait("timer", until)
    if step.wait_until is not None:
        until = next_local_time(now, timezone, step.wait_until)
        decisions.append(Sleep(sid, until))
        return _Wait("timer", until)
    if step.wait_business_hours is not None:
        start = business_hours_start(now, timezone, step.wait_business_hours)
        if start is None:
            return step.next
        decisions.append(Sleep(sid, start))
        return _Wait("timer", start)
    if step.wait_until_date is not None:
        moment = resolve_date(step.wait_until_date, facts, timezone)
        if moment is None or moment <= now:
            return step.next
        decisions.append(Sleep(sid, moment))
        return _Wait("timer", moment)
    if step.wait_for is not None:
        until = now + step.wait_for.timeout
        events = "|".join(step.wait_for.events)
        decisions.append(AwaitEvent(sid, events, until))
        return _Wait("event", until, events)
    if step.branch is not None:
        target = step.branch.then if evaluate(step.branch.condition, facts) else step.branch.else_
        return target if target is not None else step.next
    if step.split is not None:
        bucket = split_bucket(contact_id, flow.key, sid)
        total = sum(arm.weight for arm in step.split)
        edge = 0.0
        for arm in step.split:
            edge += arm.weight / total * 100
            if bucket < edge:
                return arm.next
        return step.split[-1].next
    if step.send is not None:
        decisions.append(SendMessage(sid, step.send.channel, step.send.template, step.send.purpose))
    elif step.update is not None:
        u = step.update
        decisions.append(UpdateContact(sid, u.tag, u.untag, u.trait, u.stage, u.owner))
    elif step.score is not None:
        decisions.append(AddScore(sid, step.score))
    elif step.task is not None:
        t = step.task
        decisions.append(CreateTask(sid, t.type, t.title, t.assignee, now + t.sla, t.priority))
    elif step.coupon is not None:
        c = step.coupon
        decisions.append(IssueCoupon(sid, c.prefix, c.discount, now + c.valid_for))
    elif step.webhook is not None:
        decisions.append(CallWebhook(sid, step.webhook.url, dict(step.webhook.body)))
    elif step.notify is not None:
        decisions.append(NotifyTeam(sid, step.notify.message, step.notify.to))
    elif step.end is not None:
        decisions.append(Finish(step.end, sid))
        return END
    return step.next
