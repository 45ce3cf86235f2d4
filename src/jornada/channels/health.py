"""Integration health: an incident per provider outage, opened on the first failure, closed on recovery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jornada.channels.models import ChannelProvider, IntegrationIncident, Message

RECENT = 20  # closed incidents shown besides the open ones


def open_incident(session: Session, workspace_id: str, channel: str) -> IntegrationIncident | None:
    return session.scalar(
        select(IntegrationIncident).where(
            IntegrationIncident.workspace_id == workspace_id,
            IntegrationIncident.channel == channel,
            IntegrationIncident.closed_at.is_(None),
        )
    )


def record_outage(
    session: Session,
    workspace_id: str,
    channel: str,
    provider: str,
    error: str,
    now: datetime,
    *,
    failures: int = 1,
) -> IntegrationIncident:
    """Count ``failures`` more against the open incident, opening one if there is none."""
    incident = open_incident(session, workspace_id, channel)
    if incident is None:
        incident = IntegrationIncident(
            workspace_id=workspace_id,
            channel=channel,
            provider=provider,
            opened_at=now,
            failures=0,
        )
        session.add(incident)
    incident.failures += failures
    incident.last_failure_at = now
    incident.last_error = error[:500]
    session.flush()
    return incident


def record_recovery(session: Session, workspace_id: str, channel: str, now: datetime) -> None:
    """The provider answered again: its open incident, if any, closes now."""
    incident = open_incident(session, workspace_id, channel)
    if incident is not None:
        incident.closed_at = now


def _view(incident: IntegrationIncident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "channel": incident.channel,
        "provider": incident.provider,
        "opened_at": incident.opened_at,
        "closed_at": incident.closed_at,
        "last_failure_at": incident.last_failure_at,
        "failures": incident.failures,
        "last_error": incident.last_error,
    }


def integration_health(session: Session, workspace_id: str) -> dict[str, Any]:
    """Each configured channel: ok or down, its open incident, messages waiting; recent incidents."""
    waiting = dict(
        session.execute(
            select(Message.channel, func.count())
            .where(
                Message.workspace_id == workspace_id,
                Message.status.in_(("queued", "sending")),
            )
            .group_by(Message.channel)
        ).all()
    )
    incidents = list(
        session.scalars(
            select(IntegrationIncident)
            .where(IntegrationIncident.workspace_id == workspace_id)
            .order_by(IntegrationIncident.opened_at.desc(), IntegrationIncident.id.desc())
            .limit(RECENT)
        )
    )
    open_by_channel = {
        i.channel: i
        for i in session.scalars(
            select(IntegrationIncident).where(
                IntegrationIncident.workspace_id == workspace_id,
                IntegrationIncident.closed_at.is_(None),
            )
        )
    }
    channels = [
        {
            "channel": row.channel,
            "provider": row.provider,
            "status": "down" if row.channel in open_by_channel else "ok",
            "queued": int(waiting.get(row.channel, 0)),
            "incident": _view(open_by_channel[row.channel])
            if row.channel in open_by_channel
            else None,
        }
        for row in session.scalars(
            select(ChannelProvider)
            .where(ChannelProvider.workspace_id == workspace_id)
            .order_by(ChannelProvider.channel)
        )
    ]
    return {"channels": channels, "incidents": [_view(i) for i in incidents]}
