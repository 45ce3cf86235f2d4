"""Provider settings per workspace and channel: options in clear, secrets encrypted.

:func:`get_provider` is what senders use; :func:`set_provider`,
:func:`unset_provider` and :func:`list_providers` back the CLI and the API.
A channel without settings runs in the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jornada.channels.models import ChannelProvider
from jornada.channels.providers.kinds import DEFAULT_KIND, KINDS
from jornada.channels.providers.secrets import Keyring, keyring_for
from jornada.channels.templates import CHANNELS
from jornada.config import load_settings
from jornada.errors import InvalidInput

MASK = "********"
#: Options every provider kind takes, checked here rather than by each kind: what the
#: provider accepts (messages per second; messages per day of the workspace's time zone).
LIMITS = ("rate_per_second", "daily_cap")
MAX_RATE, MAX_DAILY_CAP = 10_000.0, 100_000_000


@dataclass(frozen=True)
class ProviderConfig:
    """A workspace's provider for one channel, secrets decrypted (keep it out of logs)."""

    workspace_id: str
    channel: str
    provider: str
    options: Mapping[str, Any]
    secrets: Mapping[str, str]
    base_url: str | None
    updated_at: datetime

    def __repr__(self) -> str:  # a config printed by accident shows no secret
        return f"ProviderConfig({self.workspace_id!r}, {self.channel!r}, {self.provider!r})"

    @property
    def rate_per_second(self) -> float | None:
        """Messages per second the provider accepts; None: no limit."""
        value = self.options.get("rate_per_second")
        return float(value) if value is not None else None

    @property
    def daily_cap(self) -> int | None:
        """Messages per day (the workspace's day) the provider accepts; None: no cap."""
        value = self.options.get("daily_cap")
        return int(value) if value is not None else None

    def view(self) -> dict[str, Any]:
        """What the CLI and the API show: options, which secrets are set (masked), a summary."""
        kind = KINDS.get(self.provider)
        summary = None
        if kind:
            own = {k: v for k, v in self.options.items() if k not in LIMITS}
            summary = kind.describe(own, dict(self.secrets)) + describe_limits(self.options)
        return {
            "channel": self.channel,
            "provider": self.provider,
            "base_url": self.base_url,
            "options": dict(self.options),
            "secrets": dict.fromkeys(sorted(self.secrets), MASK),
            "summary": summary,
            "updated_at": self.updated_at,
        }


def describe_limits(options: Mapping[str, Any]) -> str:
    """``", at most 10/s, 1000 a day"``, or nothing without limits."""
    parts = []
    if options.get("rate_per_second") is not None:
        parts.append(f"at most {options['rate_per_second']:g}/s")
    if options.get("daily_cap") is not None:
        parts.append(f"{options['daily_cap']} a day")
    return f", {', '.join(parts)}" if parts else ""


def validate_limits(options: Mapping[str, Any]) -> dict[str, Any]:
    """The checked ``rate_per_second`` and ``daily_cap`` of ``options`` (the ones set)."""
    clean: dict[str, Any] = {}
    rate = options.get("rate_per_second")
    if rate is not None:
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= MAX_RATE:
            raise InvalidInput(
                f"rate_per_second must be a number above 0 and at most {MAX_RATE:g}, not {rate!r}",
                field="options.rate_per_second",
            )
        clean["rate_per_second"] = float(rate)
    cap = options.get("daily_cap")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or not 0 < cap <= MAX_DAILY_CAP:
            raise InvalidInput(
                f"daily_cap must be a whole number from 1 to {MAX_DAILY_CAP}, not {cap!r}",
                field="options.daily_cap",
            )
        clean["daily_cap"] = cap
    return clean


def _keys(session: Session, keys: Keyring | None) -> Keyring:
    if keys is not None:
        return keys
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    return keyring_for(load_settings(), url)


def _config(row: ChannelProvider, keys: Keyring) -> ProviderConfig:
    return ProviderConfig(
        workspace_id=row.workspace_id,
        channel=row.channel,
        provider=row.provider,
        options=dict(row.options),
        secrets=keys.decrypt(row.secrets),
        base_url=row.base_url,
        updated_at=row.updated_at,
    )


def get_provider(
    session: Session, workspace_id: str, channel: str, *, keys: Keyring | None = None
) -> ProviderConfig | None:
    """The workspace's provider for ``channel``, secrets decrypted; None: the sandbox.

    ``keys``: the server's keyring (by default the one of ``JORNADA_SECRET_KEY``
    or of the ``secret.key`` beside this session's database).
    """
    row = session.get(ChannelProvider, {"workspace_id": workspace_id, "channel": channel})
    return None if row is None else _config(row, _keys(session, keys))


def list_providers(
    session: Session, workspace_id: str, *, keys: Keyring | None = None
) -> list[ProviderConfig]:
    """Every channel the workspace configured, by channel name."""
    rows = session.scalars(
        select(ChannelProvider)
        .where(ChannelProvider.workspace_id == workspace_id)
        .order_by(ChannelProvider.channel)
    )
    keyring = _keys(session, keys)
    return [_config(row, keyring) for row in rows]


def configured(session: Session, workspace_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    """``(workspace, channel) → provider`` for the given workspaces; one query, nothing decrypted."""
    ids = sorted(set(workspace_ids))
    if not ids:
        return {}
    return {
        (w, c): p
        for w, c, p in session.execute(
            select(
                ChannelProvider.workspace_id, ChannelProvider.channel, ChannelProvider.provider
            ).where(ChannelProvider.workspace_id.in_(ids))
        )
    }


def set_provider(
    session: Session,
    workspace_id: str,
    channel: str,
    *,
    options: Mapping[str, Any],
    secrets: Mapping[str, str | None] | None = None,
    provider: str | None = None,
    base_url: str | None = None,
    now: datetime,
    keys: Keyring | None = None,
) -> ProviderConfig:
    """Configure (or reconfigure) ``channel`` for the workspace.

    Secrets not given keep their stored value (so the sender can change without
    re-entering the password); a secret given as None is removed.
    """
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    name = provider or DEFAULT_KIND.get(channel)
    kind = KINDS.get(name or "")
    if kind is None or channel not in kind.channels:
        served = ", ".join(f"{k.name} ({'/'.join(k.channels)})" for k in KINDS.values())
        raise InvalidInput(
            f"no provider {name or ''!r} for {channel}; available: {served}", field="provider"
        )
    keyring = _keys(session, keys)
    row = session.get(ChannelProvider, {"workspace_id": workspace_id, "channel": channel})
    stored = keyring.decrypt(row.secrets) if row is not None and row.provider == kind.name else {}
    merged = {**stored, **(secrets or {})}
    limits = validate_limits(options)
    clean_options, clean_secrets = kind.validate(
        {k: v for k, v in options.items() if k not in LIMITS},
        {k: v for k, v in merged.items() if v is not None},
    )
    clean_options = {**clean_options, **limits}
    if base_url is not None:
        if not kind.http:
            raise InvalidInput(f"{kind.name} does not speak HTTP: no base URL", field="base_url")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                f"base URL must be http(s)://host[:port][/path], not {base_url!r}",
                field="base_url",
            )
    if row is None:
        row = ChannelProvider(workspace_id=workspace_id, channel=channel, created_at=now)
        session.add(row)
    row.provider = kind.name
    row.options = clean_options
    row.secrets = keyring.encrypt(clean_secrets)
    row.base_url = base_url.rstrip("/") if base_url else None
    row.updated_at = now
    session.flush()
    return _config(row, keyring)


def set_limits(
    session: Session,
    workspace_id: str,
    channel: str,
    *,
    rate_per_second: float | None,
    daily_cap: int | None,
    now: datetime,
    keys: Keyring | None = None,
) -> ProviderConfig:
    """Set (or, with None, remove) the provider's rate limit and daily cap; other options kept."""
    limits = validate_limits({"rate_per_second": rate_per_second, "daily_cap": daily_cap})
    row = session.get(ChannelProvider, {"workspace_id": workspace_id, "channel": channel})
    if row is None:
        raise InvalidInput(f"no provider is set for {channel}", field="channel")
    row.options = {**{k: v for k, v in row.options.items() if k not in LIMITS}, **limits}
    row.updated_at = now
    session.flush()
    return _config(row, _keys(session, keys))


def unset_provider(session: Session, workspace_id: str, channel: str) -> bool:
    """Back to the sandbox for ``channel``; whether there was a provider."""
    result = session.execute(
        delete(ChannelProvider).where(
            ChannelProvider.workspace_id == workspace_id, ChannelProvider.channel == channel
        )
    )
    return bool(getattr(result, "rowcount", 0))
