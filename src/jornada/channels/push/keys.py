"""A workspace's VAPID key pair: made once, kept, replaced only on purpose (``rotate``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from jornada.channels.providers import Keyring, ProviderConfig, get_provider, set_provider
from jornada.channels.push.config import generate_keys
from jornada.channels.push.models import PushSubscription
from jornada.errors import Conflict, InvalidInput


@dataclass(frozen=True)
class VapidSetup:
    """What :func:`set_up_vapid` did: the provider, whether keys were made, subscriptions dropped."""

    config: ProviderConfig
    generated: bool
    dropped: int

    @property
    def public_key(self) -> str:
        return str(self.config.options["public_key"])


def set_up_vapid(
    session: Session,
    workspace_id: str,
    *,
    subject: str | None,
    title: str | None = None,
    url: str | None = None,
    rotate: bool = False,
    now: datetime,
    keys: Keyring | None = None,
) -> VapidSetup:
    """Make the workspace's push provider (a new P-256 pair), or change its subject.

    Existing keys are kept unless ``rotate``: every browser subscribed with the
    old public key, so rotating deletes the workspace's subscriptions (their
    pushes would be refused) and the browsers must subscribe again.
    """
    current = get_provider(session, workspace_id, "push", keys=keys)
    has_keys = current is not None and current.provider == "webpush"
    options = dict(current.options) if has_keys and current is not None else {}
    if subject:
        options["subject"] = subject
    if title and "title" not in options:
        options["title"] = title
    if url and "url" not in options:
        options["url"] = url
    if not options.get("subject"):
        raise InvalidInput(
            "VAPID needs a contact for push services: --subject mailto:you@your-shop",
            field="subject",
        )
    if has_keys and not rotate:
        if not subject:
            raise Conflict(
                f"the workspace has VAPID keys already (public key {options['public_key']});"
                " --rotate replaces them and every browser must subscribe again",
                field="rotate",
            )
        config = set_provider(session, workspace_id, "push", options=options, now=now, keys=keys)
        return VapidSetup(config, generated=False, dropped=0)
    public, private = generate_keys()
    options["public_key"] = public
    config = set_provider(
        session,
        workspace_id,
        "push",
        provider="webpush",
        options=options,
        secrets={"private_key": private},
        now=now,
        keys=keys,
    )
    dropped = 0
    if has_keys:
        result = session.execute(
            delete(PushSubscription).where(PushSubscription.workspace_id == workspace_id)
        )
        dropped = int(getattr(result, "rowcount", 0) or 0)
    return VapidSetup(config, generated=True, dropped=dropped)
