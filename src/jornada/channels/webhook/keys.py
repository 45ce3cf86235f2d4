"""A workspace's webhook signing secret: generated once, shown once, replaced on purpose."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from jornada.channels.providers import Keyring, ProviderConfig, get_provider, set_provider
from jornada.channels.webhook.config import new_signing_secret


def set_up_webhook(
    session: Session,
    workspace_id: str,
    *,
    rotate: bool = False,
    now: datetime,
    keys: Keyring | None = None,
) -> tuple[ProviderConfig, str | None]:
    """Turn on signed outgoing webhooks; ``(provider, the new secret or None when kept)``.

    The secret is generated the first time (and on ``rotate``); the caller shows
    it once, since it is stored encrypted and never shown again.
    """
    current = get_provider(session, workspace_id, "webhook", keys=keys)
    kept = current is not None and current.provider == "webhook" and not rotate
    secret = None if kept else new_signing_secret()
    limits = dict(current.options) if current is not None else {}
    config = set_provider(
        session,
        workspace_id,
        "webhook",
        provider="webhook",
        options=limits,
        secrets={"signing_secret": secret} if secret else None,
        now=now,
        keys=keys,
    )
    return config, secret
