"""Dashboard read models for flows."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from jornada.channels.models import Message
from jornada.contacts.state import cents_str, order_total_cents
from jornada.errors import NotFound
from jornada.events import Event
from jornada.flows import CATALOG, FlowRun
from jornada.metrics.attribution import AttributionWindow, OrderFact, Touch, attribute
from jornada.metrics.uplift import uplift
from jornada.outbox import OutboxItem

DEFAULT_WINDOW = AttributionWindow()
MAX_REASONS = 10  # the most frequent reasons not to send shown per step
#: A message handed to its provider but not (yet) sent: the step counts it under this status.
_NOT_SENT = ("queued", "sending", "failed", "bounced")
_Step = tuple[str | None, str | None]  # (step id, channel)


def flows_overview(session: Session, workspace_id: str) -> list[dict[str, Any]]:
    """Each active flow with its runs by status."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for key, status, n in session.execute(
        select(FlowRun.flow_key, FlowRun.status, func.count())
        .where(FlowRun.workspace_id == workspace_id)
        .group_by(FlowRun.flow_key, FlowRun.status)
    ):
        counts[key][status] = n
    return [
        {
            "key": f.key,
            "name": f.doc.name,
            "version": f.version,
            "runs": {
                s: counts[f.key][s]
                for s in ("scheduled", "active", "converted", "completed", "exited", "cancelled")
            },
        }
        for f in CATALOG.active(session, workspace_id)
    ]


def _step_counts(
    session: Session, workspace_id: str, key: str
) -> tuple[dict[_Step, Counter[str]], dict[_Step, Counter[str]]]:
    """Per (step, channel): sends by status, and why messages were not sent.

    An outbox item is ``pending`` (``deferred`` when the gate put it off),
    ``suppressed`` or ``failed``; a done one counts as its message: ``sent``
    (or further), else ``queued``/``sending``/``failed``/``bounced`` at the provider.
    Reasons: the gate's (suppressed, deferred), a broken template, and the
    provider's or the delivery's (``daily cap of 2 reached``) for messages not sent.
    """
    flow = (
        OutboxItem.workspace_id == workspace_id,
        FlowRun.flow_key == key,
        OutboxItem.kind == "send",
    )
    steps: dict[_Step, Counter[str]] = defaultdict(Counter)
    reasons: dict[_Step, Counter[str]] = defaultdict(Counter)
    deferred = and_(OutboxItem.status == "pending", OutboxItem.reason.is_not(None))
    for step_id, channel, status, is_deferred, message_status, n in session.execute(
        select(
            OutboxItem.step_id,
            OutboxItem.channel,
            OutboxItem.status,
            deferred,
            Message.status,
            func.count(),
        )
        .join(FlowRun, FlowRun.id == OutboxItem.run_id)
        .outerjoin(Message, Message.outbox_id == OutboxItem.id)
        .where(*flow)
        .group_by(
            OutboxItem.step_id, OutboxItem.channel, OutboxItem.status, deferred, Message.status
        )
    ):
        if status == "done":
            status = message_status if message_status in _NOT_SENT else "sent"
        elif is_deferred:
            status = "deferred"
        steps[(step_id, channel)][status] += n
    for step_id, channel, reason, n in session.execute(
        select(OutboxItem.step_id, OutboxItem.channel, OutboxItem.reason, func.count())
        .join(FlowRun, FlowRun.id == OutboxItem.run_id)
        .where(*flow, OutboxItem.status != "done", OutboxItem.reason.is_not(None))
        .group_by(OutboxItem.step_id, OutboxItem.channel, OutboxItem.reason)
    ):
        reasons[(step_id, channel)][reason or ""] += n
    for step_id, channel, error, n in session.execute(
        select(OutboxItem.step_id, OutboxItem.channel, Message.error, func.count())
        .join(FlowRun, FlowRun.id == OutboxItem.run_id)
        .join(Message, Message.outbox_id == OutboxItem.id)
        .where(*flow, Message.status.in_(_NOT_SENT), Message.error.is_not(None))
        .group_by(OutboxItem.step_id, OutboxItem.channel, Message.error)
    ):
        reasons[(step_id, channel)][error or ""] += n
    return steps, reasons


def flow_stats(
    session: Session, workspace_id: str, key: str, window: AttributionWindow = DEFAULT_WINDOW
) -> dict[str, Any]:
    """Funnel, sends and suppressions per step and channel, conversions, revenue and uplift."""
    runs = session.scalars(
        select(FlowRun).where(FlowRun.workspace_id == workspace_id, FlowRun.flow_key == key)
    ).all()
    known = {f.key for f in CATALOG.active(session, workspace_id)}
    if not runs and key not in known:
        raise NotFound(f"no flow {key!r} in this workspace", field="key")
    waiting = [r for r in runs if r.status in ("scheduled", "cancelled")]  # never started
    runs = [r for r in runs if r.status not in ("scheduled", "cancelled")]
    treated = [r for r in runs if not r.holdout]
    control = [r for r in runs if r.holdout]
    exited: Counter[str] = Counter(r.end_reason or "" for r in runs if r.status == "exited")
    converted = [r for r in treated if r.status == "converted"]
    steps, reasons = _step_counts(session, workspace_id, key)
    # attribution: orders after a delivery, open or click of this flow's messages
    contact_ids = sorted({r.contact_id for r in treated})
    touches: list[Touch] = []
    orders: list[OrderFact] = []
    for start in range(0, len(contact_ids), 500):
        chunk = contact_ids[start : start + 500]
        touches += [
            Touch(m.contact_id, m.created_at, "delivery")
            for m in session.scalars(
                select(Message)
                .join(FlowRun, FlowRun.id == Message.run_id)
                .where(
                    Message.workspace_id == workspace_id,
                    FlowRun.flow_key == key,
                    Message.contact_id.in_(chunk),
                )
            )
        ]
        for event in session.scalars(
            select(Event).where(
                Event.workspace_id == workspace_id,
                Event.contact_id.in_(chunk),
                Event.event.in_(["Message Clicked", "Message Opened", "Order Completed"]),
            )
        ):
            if event.event == "Order Completed":
                orders.append(
                    OrderFact(
                        event.contact_id,
                        str(event.properties.get("order_id")),
                        event.timestamp,
                        order_total_cents(event.properties),
                    )
                )
            elif event.properties.get("flow") in (None, key):
                kind = "click" if event.event == "Message Clicked" else "open"
                touches.append(Touch(event.contact_id, event.timestamp, kind))
    earned = attribute(orders, touches, window)
    lift = uplift(
        len(converted), len(treated), sum(r.status == "converted" for r in control), len(control)
    )
    return {
        "key": key,
        "scheduled": sum(r.status == "scheduled" for r in waiting),
        "cancelled_before_start": sum(r.status == "cancelled" for r in waiting),
        "entered": len(runs),
        "treated": len(treated),
        "holdout": len(control),
        "active": sum(r.status == "active" for r in runs),
        "completed": sum(r.status == "completed" for r in runs),
        "converted": len(converted),
        "exited": dict(sorted(exited.items())),
        "steps": [
            {
                "step": step,
                "channel": channel,
                **dict(sorted(c.items())),
                **(
                    {"reasons": dict(reasons[(step, channel)].most_common(MAX_REASONS))}
                    if reasons[(step, channel)]
                    else {}
                ),
            }
            for (step, channel), c in sorted(
                steps.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")
            )
        ],
        "goal_revenue": cents_str(sum(r.revenue_cents or 0 for r in converted)),
        "attributed_orders": len(earned),
        "attributed_revenue": cents_str(sum(o.total_cents for o in earned)),
        "attribution_window": {
            "after_click_days": window.after_click.days,
            "after_delivery_days": window.after_delivery.days,
        },
        "uplift": lift.to_dict() if lift else None,
    }
