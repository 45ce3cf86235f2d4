"""What the engine decides; the runner turns decisions into rows (outbox, tasks, contact changes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SendMessage:
    step_id: str
    channel: str
    template: str
    purpose: str


@dataclass(frozen=True)
class UpdateContact:
    step_id: str
    tag: str | None = None
    untag: str | None = None
    trait: dict[str, Any] | None = None
    stage: str | None = None
    owner: str | None = None


@dataclass(frozen=True)
class AddScore:
    step_id: str
    points: int


@dataclass(frozen=True)
class CreateTask:
    step_id: str
    type: str
    title: str
    assignee: str
    due_at: datetime
    priority: str


@dataclass(frozen=True)
class IssueCoupon:
    step_id: str
    prefix: str
    discount: str
    expires_at: datetime


@dataclass(frozen=True)
class CallWebhook:
    step_id: str
    url: str
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotifyTeam:
    step_id: str
    message: str
    to: str


@dataclass(frozen=True)
class Sleep:
    """The run waits until ``until`` (a timer)."""

    step_id: str
    until: datetime


@dataclass(frozen=True)
class AwaitEvent:
    """The run waits for ``event`` until ``until``; then it goes on at ``on_timeout``."""

    step_id: str
    event: str
    until: datetime


@dataclass(frozen=True)
class Finish:
    """The run ends; ``reason`` is completed, converted, exited:<why>, or a step's own word."""

    reason: str
    step_id: str | None = None


Decision = (
    SendMessage
    | UpdateContact
    | AddScore
    | CreateTask
    | IssueCoupon
    | CallWebhook
    | NotifyTeam
    | Sleep
    | AwaitEvent
    | Finish
)
EFFECTS = (SendMessage, UpdateContact, AddScore, CreateTask, IssueCoupon, CallWebhook, NotifyTeam)


@dataclass
class RunState:
    """Where a run is: the next step to run, what it waits for, what it has captured."""

    position: int = 0
    entered_at: datetime | None = None
    waiting: str | None = None  # None | "timer" | "event"
    wake_at: datetime | None = None
    wait_event: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    steps_run: int = 0


__all__ = [
    "EFFECTS",
    "AddScore",
    "AwaitEvent",
    "CallWebhook",
    "CreateTask",
    "Decision",
    "Finish",
    "IssueCoupon",
    "NotifyTeam",
    "RunState",
    "SendMessage",
    "Sleep",
    "UpdateContact",
]
