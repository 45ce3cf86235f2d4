"""The one write path for push subscriptions, and the read delivery uses.

A subscription belongs to the contact the browser identified as; when that
contact is later merged into another, its subscriptions follow the merge on
read (:func:`subscriptions_of` looks through ``merged_into_id``), so no merge
has to know about push.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jornada.channels.push.config import check_auth, check_endpoint, check_point
from jornada.channels.push.models import PushSubscription
from jornada.contacts import Contact
from jornada.errors import InvalidInput

MAX_MERGE_DEPTH = 8  # contacts merged into contacts merged into …: followed this far


@dataclass(frozen=True)
class Subscription:
    """A browser's ``PushSubscription.toJSON()``, checked: where to push and the payload keys."""

    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, Any]:
        """The ``subscription_info`` pywebpush takes."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def parse_subscription(value: Any) -> Subscription:
    """Check ``{endpoint, keys: {p256dh, auth}}``; a bad field raises InvalidInput naming it."""
    if not isinstance(value, Mapping):
        raise InvalidInput(
            "subscription must be the browser's PushSubscription as JSON", field="subscription"
        )
    endpoint = check_endpoint(value.get("endpoint"))
    keys = value.get("keys")
    if not isinstance(keys, Mapping):
        raise InvalidInput("subscription.keys must hold p256dh and auth", field="subscription.keys")
    p256dh = keys.get("p256dh")
    p256dh = check_point(
        p256dh if isinstance(p256dh, str) else "", "subscription.keys.p256dh", "keys.p256dh"
    )
    return Subscription(endpoint, p256dh, check_auth(keys.get("auth")))


def subscribe(
    session: Session,
    workspace_id: str,
    contact_id: str,
    subscription: Subscription,
    *,
    user_agent: str | None,
    now: datetime,
) -> PushSubscription:
    """Store (or move to this contact and refresh) the subscription of ``subscription.endpoint``."""
    row = session.scalar(
        select(PushSubscription).where(
            PushSubscription.workspace_id == workspace_id,
            PushSubscription.endpoint == subscription.endpoint,
        )
    )
    if row is None:
        row = PushSubscription(
            workspace_id=workspace_id, endpoint=subscription.endpoint, created_at=now
        )
        session.add(row)
    row.contact_id = contact_id
    row.p256dh, row.auth = subscription.p256dh, subscription.auth
    row.user_agent = (user_agent or "")[:300] or None
    row.updated_at, row.last_error = now, None
    session.flush()
    return row


def unsubscribe(session: Session, workspace_id: str, endpoints: Iterable[str]) -> int:
    """Forget the subscriptions of ``endpoints``; how many there were."""
    wanted = sorted(set(endpoints))
    if not wanted:
        return 0
    result = session.execute(
        delete(PushSubscription).where(
            PushSubscription.workspace_id == workspace_id, PushSubscription.endpoint.in_(wanted)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def subscriptions_of(session: Session, workspace_id: str, contact_id: str) -> list[Subscription]:
    """The contact's subscriptions, with those of the contacts merged into it, oldest first."""
    ids, frontier = {contact_id}, {contact_id}
    for _ in range(MAX_MERGE_DEPTH):
        merged = set(
            session.scalars(
                select(Contact.id).where(
                    Contact.workspace_id == workspace_id, Contact.merged_into_id.in_(frontier)
                )
            )
        )
        frontier = merged - ids
        if not frontier:
            break
        ids |= frontier
    rows = session.execute(
        select(PushSubscription.endpoint, PushSubscription.p256dh, PushSubscription.auth)
        .where(
            PushSubscription.workspace_id == workspace_id,
            PushSubscription.contact_id.in_(sorted(ids)),
        )
        .order_by(PushSubscription.id)
    )
    return [Subscription(endpoint, p256dh, auth) for endpoint, p256dh, auth in rows]


def note_error(session: Session, workspace_id: str, errors: Mapping[str, str]) -> None:
    """Keep the push service's last refusal on each subscription that outlived it."""
    for endpoint, error in errors.items():
        row = session.scalar(
            select(PushSubscription).where(
                PushSubscription.workspace_id == workspace_id,
                PushSubscription.endpoint == endpoint,
            )
        )
        if row is not None:
            row.last_error = error[:500]
