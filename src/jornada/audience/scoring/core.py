"""Pure: one contact's lead score moved forward by its new events, with a reason for every point.

The score is ``fit + engagement + adjustments``:

* **fit**: the points of the fit rules whose condition holds now;
* **engagement**: every award an engagement rule made, each worth
  ``round(points * 2^(-age / half_life))`` now (half up). Each award decays on
  its own, from its own time, so the value is a function of the awards alone:
  it does not depend on when, or how often, the score was looked at;
* **adjustments**: points added to ``contacts.score`` by anything else (flow
  ``score:`` steps, a person), kept as they are.

A rule's cap bounds its decayed value: an award is cut to what keeps the rule
at or under its cap at the award's time. Every change is a :class:`Reason`,
so the reasons of a contact always add up to its score.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from jornada.audience.compile import ContactLike
from jornada.audience.scoring.model import CompiledRule, ScoringModel, Threshold, human_duration
from jornada.events.canonical import LIFECYCLE_STAGES

MINUS = "\u2212"  # reasons write "\u221210 decay" with a true minus sign (U+2212)
REFRESH = timedelta(days=1)  # a decaying score is brought up to date at least this often
FINAL_STAGES = frozenset({"Won", "Closed"})  # a score never moves a contact away from these
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """Microseconds since 1970: how awards keep their time (exact, and cheap to compare)."""
    return (at - EPOCH) // _US


class ScoredEvent(Protocol):
    """What scoring reads of an event (an ingestion ``EventRecord`` fits)."""

    @property
    def type(self) -> str: ...
    @property
    def event(self) -> str | None: ...
    @property
    def timestamp(self) -> datetime: ...
    @property
    def properties(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Reason:
    """One change of a score: signed points, what caused them, which rule, and when."""

    points: int
    reason: str
    rule: str  # a rule key, or "decay", "adjustment", "model"
    at: datetime


@dataclass(slots=True)
class RuleState:
    """An engagement rule's live awards ``(points, at)`` and its pattern hits not yet used
    (times in :func:`micros`)."""

    awards: list[tuple[int, int]] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)


@dataclass(slots=True)
class ScoreState:
    """What scoring keeps per contact between batches."""

    model_version: int
    fit: dict[str, int] = field(default_factory=dict)
    rules: dict[str, RuleState] = field(default_factory=dict)
    engagement: int = 0  # engagement points as of ``as_of``, as last written
    total: int = 0  # ``contacts.score`` right after the last write
    as_of: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fit": self.fit,
            "rules": {
                key: {
                    "awards": [[p, at] for p, at in rs.awards],
                    "hits": rs.hits,
                }
                for key, rs in self.rules.items()
                if rs.awards or rs.hits
            },
        }

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        model_version: int,
        engagement: int,
        total: int,
        as_of: datetime | None,
    ) -> ScoreState:
        rules = {
            key: RuleState(
                [(p, at) for p, at in value.get("awards", ())],
                list(value.get("hits", ())),
            )
            for key, value in (data.get("rules") or {}).items()
        }
        fit = {str(k): int(v) for k, v in (data.get("fit") or {}).items()}
        return cls(model_version, fit, rules, engagement, total, as_of)


@dataclass(frozen=True, slots=True)
class Crossing:
    threshold: Threshold
    direction: Literal["up", "down"]


@dataclass(slots=True)
class Outcome:
    """What one scoring pass did: reasons oldest first, the score before and after, crossings."""

    state: ScoreState
    reasons: list[Reason]
    before: int
    after: int
    crossings: list[Crossing]
    stage: str | None  # the stage to move the contact to, if a threshold says so
    dirty: bool = False  # the state changed and needs writing (reasons, awards, pattern hits)

    @property
    def changed(self) -> bool:
        return bool(self.reasons)


# -- arithmetic ----------------------------------------------------------------------------
def decayed(points: int, at: datetime, now: datetime, half_life: timedelta | None) -> int:
    """An award's worth at ``now``: halved every ``half_life`` since ``at``, rounded half up."""
    return _worth(points, micros(at), micros(now), _half(half_life))


def _half(half_life: timedelta | None) -> int | None:
    return None if half_life is None else half_life // _US


def _worth(points: int, at: int, now: int, half: int | None) -> int:
    if half is None or now <= at:
        return points
    factor: float = 2.0 ** (-(now - at) / half)
    value = math.floor(abs(points) * factor + 0.5)
    return value if points > 0 else -value


def rule_value(rule: RuleState, now: datetime, half_life: timedelta | None) -> int:
    return _rule_value(rule, micros(now), _half(half_life))


def _rule_value(rule: RuleState, now: int, half: int | None) -> int:
    return sum(_worth(p, at, now, half) for p, at in rule.awards)


def engagement_at(state: ScoreState, now: datetime, half_life: timedelta | None) -> int:
    """The engagement points at ``now``: the sum of every live award's decayed worth."""
    at, half = micros(now), _half(half_life)
    return sum(_rule_value(rs, at, half) for rs in state.rules.values())


def signed(points: int) -> str:
    return f"+{points}" if points >= 0 else f"{MINUS}{-points}"


def stage_after(current: str, crossings: Iterable[Crossing]) -> str | None:
    """The furthest stage the upward crossings ask for, if it is ahead of ``current``.

    A score moves a contact forward only: never backwards, never away from Won
    or Closed, never from a stage outside the funnel.
    """
    if current in FINAL_STAGES or current not in LIFECYCLE_STAGES:
        return None
    wanted = [c.threshold.stage for c in crossings if c.direction == "up" and c.threshold.stage]
    if not wanted:
        return None
    target = max(wanted, key=LIFECYCLE_STAGES.index)
    return target if LIFECYCLE_STAGES.index(target) > LIFECYCLE_STAGES.index(current) else None


def crossings(model: ScoringModel, before: int, after: int) -> list[Crossing]:
    """Thresholds passed going from ``before`` to ``after`` (reaching one counts as crossing it)."""
    if after > before:
        return [Crossing(t, "up") for t in model.thresholds if before < t.score <= after]
    return [Crossing(t, "down") for t in reversed(model.thresholds) if after < t.score <= before]


# -- one pass --------------------------------------------------------------------------------
def score(
    model: ScoringModel,
    state: ScoreState,
    contact: ContactLike,
    events: Sequence[ScoredEvent],
    now: datetime,
    *,
    refit: bool = True,
) -> Outcome:
    """Bring ``state`` to ``now`` and fold in ``events`` (the rules listening to them).

    In order: points that changed ``contacts.score`` outside scoring
    (adjustment), rules the model no longer has, decay since the last pass,
    the events in time order, then the fit rules (when ``refit``, or when the
    model changed). ``state`` is changed in place and returned in the outcome.
    """
    half = _half(model.half_life)
    now = max(now, state.as_of) if state.as_of else now
    now_us = micros(now)
    reasons: list[Reason] = []
    dirty = False
    before = contact.score
    if before != state.total:
        delta = before - state.total
        reasons.append(Reason(delta, f"{signed(delta)} flows or manual changes", "adjustment", now))
    if state.model_version != model.version:
        refit = True
        keys = {r.key for r in model.engagement}
        gone = {k: rs for k, rs in state.rules.items() if k not in keys}
        lost = sum(_rule_value(rs, now_us, half) for rs in gone.values())
        for key in gone:
            del state.rules[key]
        if lost:
            text = f"{signed(-lost)} rules no longer in the model (version {model.version})"
            reasons.append(Reason(-lost, text, "model", now))
        state.model_version, dirty = model.version, True
    engagement = sum(_rule_value(rs, now_us, half) for rs in state.rules.values())
    if engagement != state.engagement:
        delta = engagement - state.engagement
        reasons.append(Reason(delta, f"{signed(delta)} decay", "decay", now))
    ordered = sorted(events, key=lambda e: e.timestamp)
    # an award worth nothing at the earliest moment this pass looks at stays worth nothing
    prune_at = micros(min(now, ordered[0].timestamp)) if ordered else now_us
    for rs in state.rules.values():
        live = [(p, at) for p, at in rs.awards if _worth(p, at, prune_at, half) != 0]
        if len(live) != len(rs.awards):
            rs.awards, dirty = live, True
    awarded: dict[str, _Tally] = {}  # one reason per rule and pass: "+6 viewed a product (3 times)"
    for event in ordered:
        for rule in model.rules_for(event.type, event.event):
            if rule.matches is not None and not rule.matches(event.properties):
                continue
            dirty = True  # an award or a pattern hit
            points = _award(rule, state, event, half)
            if points is not None:
                tally = awarded.pop(rule.key, None) or _Tally(rule)
                tally.add(points, _worth(points, micros(event.timestamp), now_us, half), event)
                awarded[rule.key] = tally  # re-inserted: reasons follow the last event of each rule
    for tally in sorted(awarded.values(), key=lambda t: t.at):
        if tally.worth:
            engagement += tally.worth
            reasons.append(Reason(tally.worth, tally.text(), tally.rule.key, tally.at))
    if refit:
        reasons += _refit(model, state, contact, now)
    after = before + sum(r.points for r in reasons if r.rule != "adjustment")
    state.engagement, state.total, state.as_of = engagement, after, now
    passed = crossings(model, before, after)
    stage = stage_after(contact.stage, passed)
    return Outcome(state, reasons, before, after, passed, stage, dirty or bool(reasons))


def _award(
    rule: CompiledRule, state: ScoreState, event: ScoredEvent, half: int | None
) -> int | None:
    """The points the rule awards for one matching event, after its pattern and its cap."""
    spec, at = rule.rule, micros(event.timestamp)
    rs = state.rules.setdefault(rule.key, RuleState())
    if spec.count > 1:
        assert rule.window is not None
        since = at - rule.window // _US
        rs.hits = sorted([h for h in rs.hits if since < h <= at] + [at])
        if len(rs.hits) < spec.count:
            return None
        rs.hits = []
    points = spec.points
    if spec.cap is not None:
        value = sum(_worth(p, t, at, half) for p, t in rs.awards if t <= at)
        points = min(points, spec.cap - value) if points > 0 else max(points, -spec.cap - value)
        if points * spec.points <= 0:
            return None  # the rule is at its cap
    rs.awards.append((points, at))  # kept even if worth nothing now: caps read it at its time
    return points


@dataclass(slots=True)
class _Tally:
    """A rule's awards in one pass, told as one reason."""

    rule: CompiledRule
    points: int = 0  # as awarded
    worth: int = 0  # as they count now
    times: int = 0
    capped: bool = False
    at: datetime = EPOCH

    def add(self, points: int, worth: int, event: ScoredEvent) -> None:
        self.points += points
        self.worth += worth
        self.times += 1
        self.capped |= points != self.rule.rule.points
        self.at = max(self.at, event.timestamp)

    def text(self) -> str:
        spec = self.rule.rule
        text = f"{signed(self.worth)} {spec.label}"
        if spec.count > 1 and self.rule.window is not None:
            text += f" {spec.count}x in {human_duration(self.rule.window)}"
        notes = [f"{self.times} times"] if self.times > 1 else []
        if self.capped:
            notes.append(f"capped at {spec.cap}")
        if self.worth != self.points:
            notes.append(f"{signed(self.points)} when it happened, decayed since")
        return f"{text} ({'; '.join(notes)})" if notes else text


def _refit(
    model: ScoringModel, state: ScoreState, contact: ContactLike, now: datetime
) -> list[Reason]:
    reasons = []
    keys = set()
    for fit in model.fit:
        key, label = fit.rule.key, fit.rule.label
        keys.add(key)
        points = fit.rule.points if fit.holds(contact, now) else 0
        old = state.fit.get(key, 0)
        if points != old:
            text = (
                f"{signed(points - old)} {label}" if points else f"{signed(-old)} no longer {label}"
            )
            reasons.append(Reason(points - old, text, key, now))
        if points:
            state.fit[key] = points
        else:
            state.fit.pop(key, None)
    for key in [k for k in state.fit if k not in keys]:
        old = state.fit.pop(key)
        reasons.append(Reason(-old, f"{signed(-old)} fit rule {key} left the model", "model", now))
    return reasons


# -- when to look again --------------------------------------------------------------------
def next_check(model: ScoringModel, state: ScoreState, now: datetime) -> datetime | None:
    """When decay next needs writing: within :data:`REFRESH`, or sooner, to the minute, when
    the score would fall below the highest threshold it has reached. None without decay."""
    half = model.half_life
    if half is None or not any(rs.awards for rs in state.rules.values()):
        return None
    later = now + REFRESH
    reached = model.reached(state.total)
    if not reached:
        return later
    floor = reached[-1].score
    rest = state.total - engagement_at(state, now, half)  # fit and adjustments: they do not decay

    def below(at: datetime) -> bool:
        return rest + engagement_at(state, at, half) < floor

    if not below(later):
        return later
    low, high = now, later  # below(high), not below(low): the first minute it drops
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        if below(middle):
            high = middle
        else:
            low = middle
    return high
