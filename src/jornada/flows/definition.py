"""The flow language: a flow is a YAML document validated by these pydantic models.

A flow has a trigger (what enrols a contact), entry rules, a goal (the
conversion that ends it), exit rules and a list of steps run top to bottom;
``next``/``then``/``else`` jump by step id, ``end`` finishes the run. The JSON
Schema exported from :class:`FlowDocument` is in ``docs/flow-schema.json``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    Tag,
    model_validator,
)

from jornada.flows.durations import parse_duration

Duration = Annotated[
    timedelta,
    BeforeValidator(lambda v: v if isinstance(v, timedelta) else parse_duration(v)),
    PlainSerializer(lambda v: f"{int(v.total_seconds())}s", return_type=str),
]
StepId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Condition = dict[str, Any]  # see jornada.flows.conditions for the grammar
LocalTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
END = "end"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- trigger -------------------------------------------------------------------------------
class Repeat(_Strict):
    """The event must have happened ``times`` times within ``within`` (same ``same`` property)."""

    times: int = Field(ge=2)
    within: Duration
    same: str | None = Field(
        default=None, description="property that must be equal, e.g. proposal_id"
    )


class Session(_Strict):
    """A web session (events no more than ``idle`` apart) with many such events or a long duration."""

    min_events: int | None = Field(default=None, ge=1)
    longer_than: Duration | None = None
    idle: Duration = timedelta(minutes=30)

    @property
    def lookback(self) -> timedelta:
        """How far back a session is traced: longer sessions are not told apart."""
        return timedelta(hours=12)


class _Trigger(_Strict):
    start: StepId | None = Field(
        default=None, description="the step a run from this trigger begins at (default: the first)"
    )


class EventTrigger(_Trigger):
    """Enrol when an event arrives; ``where`` filters on its properties and the contact."""

    event: str | list[str]
    where: Condition | None = None
    repeat: Repeat | None = None
    session: Session | None = None

    @property
    def events(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)


class SegmentTrigger(_Trigger):
    """Enrol when a contact enters (or leaves) a segment.

    With ``where`` the segment is that predicate over traits, commerce facts,
    tags, stage and consent, checked whenever the contact changes; without it,
    the flow reacts to ``Segment Entered`` / ``Segment Exited`` events whose
    ``segment`` property is ``segment``.
    """

    segment: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    when: Literal["entered", "exited"] = Field(
        default="entered", description="entered or exited (not `on`, which YAML reads as true)"
    )
    where: Condition | None = None

    @property
    def event(self) -> str:
        return "Segment Entered" if self.when == "entered" else "Segment Exited"


class DateTrigger(_Trigger):
    """Enrol at a moment relative to a date: 24 h before an event's ``due_date``, 30 days after
    the contact's ``last_order_at``.

    With ``event``, each such event schedules a run at ``prop.<date>`` + ``offset``;
    without it, the contact's ``fact.<date>`` or ``trait.<date>`` does, and the run is
    moved when that date changes. Until it starts, the run is ``scheduled``; an
    ``unless`` event (or the goal) cancels it.
    """

    date: str = Field(
        pattern=r"^(prop|fact|trait)\.[A-Za-z0-9_.]+$",
        description="prop.due_date (with event), fact.last_order_at or trait.birthday",
    )
    event: str | None = Field(default=None, description="the event that carries the date")
    offset: Duration = timedelta()
    time: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}$", description="local time")
    unless: list[str] = Field(
        default_factory=list, description="events that cancel a scheduled run if they come first"
    )
    where: Condition | None = Field(
        default=None, description="the contact (and event) must match, or no run is scheduled"
    )

    @model_validator(mode="after")
    def _source_matches(self) -> DateTrigger:
        if self.date.startswith("prop.") and self.event is None:
            raise ValueError(f"date {self.date!r} reads an event property: name the event")
        if self.event is not None and not self.date.startswith("prop."):
            raise ValueError(f"with event {self.event!r}, date must be prop.<name>")
        return self

    @property
    def moment(self) -> WaitUntilDate:
        """The same date arithmetic as a ``wait_until_date`` step."""
        return WaitUntilDate(date=self.date, offset=self.offset, time=self.time)


class ScoreTrigger(_Trigger):
    """Enrol when the contact's score goes from below ``score_above`` to at least it."""

    score_above: int


class PriceDrop(_Strict):
    min_percent: float = Field(default=5, gt=0, lt=100)
    viewed_within: Duration = timedelta(days=30)


class PriceDropTrigger(_Trigger):
    """Enrol everyone who viewed a product lately when its price drops.

    The store's catalog sync sends ``Product Updated`` (any identity, e.g.
    ``userId: "catalog"``) with ``product_id``, ``price`` and ``previous_price``; a drop
    of at least ``min_percent`` enrols each contact who viewed that product within
    ``viewed_within``. The run sees the update's properties as ``trigger``.
    """

    price_drop: PriceDrop


class ManualTrigger(_Trigger):
    manual: Literal[True] = True


# The key a trigger is written with says which it is (``date`` before ``event``: a date
# trigger may name its event), so an error points into that trigger, not at another kind.
_TRIGGER_KEYS = (
    ("date", "date"),
    ("segment", "segment"),
    ("score_above", "score"),
    ("price_drop", "price_drop"),
    ("manual", "manual"),
    ("event", "event"),
)


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((tag for key, tag in _TRIGGER_KEYS if key in value), None)
    tags: dict[type, str] = {
        EventTrigger: "event",
        SegmentTrigger: "segment",
        DateTrigger: "date",
        ScoreTrigger: "score",
        PriceDropTrigger: "price_drop",
        ManualTrigger: "manual",
    }
    return tags.get(type(value))


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[SegmentTrigger, Tag("segment")]
    | Annotated[DateTrigger, Tag("date")]
    | Annotated[ScoreTrigger, Tag("score")]
    | Annotated[PriceDropTrigger, Tag("price_drop")]
    | Annotated[ManualTrigger, Tag("manual")],
    Discriminator(
        _trigger_kind,
        custom_error_type="trigger_kind",
        custom_error_message=(
            "a trigger starts with event, date, segment, score_above, price_drop or manual"
        ),
    ),
]


# -- rules ---------------------------------------------------------------------------------
class Entry(_Strict):
    reentry: Literal["never", "always"] | Duration = "never"
    filter: Condition | None = Field(default=None, alias="if")
    holdout: float = Field(default=0, ge=0, le=100, description="percent kept out as control")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Goal(_Strict):
    event: str
    where: Condition | None = None
    window: Duration = timedelta(days=5)


class Exit(_Strict):
    on_reply: bool = True
    on_opt_out: bool = True
    events: list[str] = Field(default_factory=list, description="other events that end the run")
    after: Duration | None = Field(default=None, description="maximum time a run may last")


# -- steps ---------------------------------------------------------------------------------
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WORKDAYS: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]


class WaitUntil(_Strict):
    """Wait until a local time of day in the contact's zone, optionally on given weekdays."""

    time: str = Field(pattern=r"^\d{2}:\d{2}$")
    weekdays: list[Weekday] | None = None


class BusinessHours(_Strict):
    start: str = Field(default="09:00", pattern=r"^\d{2}:\d{2}$")
    end: str = Field(default="18:00", pattern=r"^\d{2}:\d{2}$")
    weekdays: list[Weekday] = Field(default_factory=lambda: list(_WORKDAYS))


class WaitUntilDate(_Strict):
    """Wait until a date the run knows (``trigger.due_date``, ``fact.expected_next_order_at``),
    moved by ``offset``, at ``time`` local if given. A date already past does not wait."""

    date: str
    offset: Duration = timedelta()
    time: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}$")


class WaitFor(_Strict):
    """Wait for one of ``event`` (a name or a list); ``where`` filters on its properties."""

    event: str | list[str]
    where: Condition | None = None
    timeout: Duration
    on_timeout: str = END

    @property
    def events(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)


class Branch(_Strict):
    condition: Condition = Field(alias="if")
    then: str | None = None
    else_: str | None = Field(default=None, alias="else")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SplitArm(_Strict):
    weight: float = Field(gt=0)
    next: str


class Send(_Strict):
    channel: Literal["email", "sms", "whatsapp", "push", "voice", "webhook"]
    template: str
    purpose: Literal["marketing", "transactional"] = "marketing"


class Update(_Strict):
    tag: str | None = None
    untag: str | None = None
    trait: dict[str, Any] | None = None
    stage: Literal["New", "Contacted", "Engaged", "Qualified", "Won", "Closed"] | None = None
    owner: str | None = None


class Task(_Strict):
    type: str = Field(description="call, whatsapp, email, meeting, ticket…")
    title: str
    assignee: Literal["owner", "round_robin"] | str = "owner"
    sla: Duration = timedelta(hours=1)
    priority: Literal["low", "normal", "high"] = "normal"


class Coupon(_Strict):
    prefix: str = "VIP"
    discount: str = Field(description="e.g. 10% or R$ 20")
    valid_for: Duration = timedelta(days=2)


class Webhook(_Strict):
    url: str = Field(
        pattern=r"^https?://[^\s/?#]+\S*$",
        max_length=320,
        description="http(s) URL the step POSTs to (signed; see docs/channels.md)",
    )
    body: dict[str, Any] = Field(
        default_factory=dict, description="JSON; its strings are templates (contact, trigger…)"
    )


class Notify(_Strict):
    message: str
    to: str = "team"


class Step(_Strict):
    """One step: an ``id`` and exactly one action."""

    id: StepId
    next: str | None = None
    wait: Duration | None = None
    wait_until: WaitUntil | None = None
    wait_business_hours: BusinessHours | None = None
    wait_until_date: WaitUntilDate | None = None
    wait_for: WaitFor | None = None
    branch: Branch | None = None
    split: list[SplitArm] | None = None
    send: Send | None = None
    update: Update | None = None
    score: int | None = None
    task: Task | None = None
    coupon: Coupon | None = None
    webhook: Webhook | None = None
    notify: Notify | None = None
    end: str | None = Field(default=None, description="end the run with this reason")

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        actions = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(actions) != 1:
            raise ValueError(
                f"step {self.id!r} must have exactly one action of {', '.join(ACTIONS)}; "
                f"it has {', '.join(actions) or 'none'}"
            )
        return self

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)


ACTIONS = (
    "wait",
    "wait_until",
    "wait_business_hours",
    "wait_until_date",
    "wait_for",
    "branch",
    "split",
    "send",
    "update",
    "score",
    "task",
    "coupon",
    "webhook",
    "notify",
    "end",
)


class Scoring(_Strict):
    """Points a run's contact earns for engagement, and what happens at the threshold."""

    events: dict[str, int]
    threshold: int | None = None
    then: str | None = Field(
        default=None, description="step to jump to when the threshold is reached"
    )


class FlowDocument(_Strict):
    """A whole flow file."""

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    name: str
    description: str = ""
    trigger: Trigger | list[Trigger] = Field(
        description="what enrols a contact; a list means any of them (each may `start` elsewhere)"
    )
    entry: Entry = Entry()
    goal: Goal | None = None
    exit: Exit = Exit()
    quiet_hours: tuple[LocalTime, LocalTime] | None = Field(
        default=None,
        description="the flow's own sending window for SMS, WhatsApp and voice, e.g. "
        "['09:00', '18:00']: quiet outside it (default 08:00-20:00)",
    )
    scoring: Scoring | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _targets_exist(self) -> FlowDocument:
        ids = [s.id for s in self.steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"step ids must be unique; repeated: {', '.join(duplicates)}")
        known = {*ids, END}
        if not self.triggers:
            raise ValueError("trigger: give at least one")
        for trigger in self.triggers:
            if trigger.start is not None and trigger.start not in ids:
                raise ValueError(f"trigger start {trigger.start!r} is no step id")
        if self.scoring and self.scoring.then and self.scoring.then not in known:
            raise ValueError(f"scoring.then is {self.scoring.then!r}, which is no step id")
        for step in self.steps:
            targets = [step.next]
            if step.branch:
                targets += [step.branch.then, step.branch.else_]
            if step.wait_for:
                targets.append(step.wait_for.on_timeout)
            if step.split:
                targets += [arm.next for arm in step.split]
            for target in targets:
                if target is not None and target not in known:
                    raise ValueError(f"step {step.id!r} jumps to {target!r}, which is no step id")
        return self

    @property
    def triggers(self) -> list[Trigger]:
        return self.trigger if isinstance(self.trigger, list) else [self.trigger]

    def index_of(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)
