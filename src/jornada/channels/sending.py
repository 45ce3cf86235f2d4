"""A workspace's settings of the sending gate: read once per batch, changed by the API and the CLI.

Quiet hours, frequency caps per channel and the smart-sending window; a
workspace that set nothing gets ``policy.DEFAULT_SENDING``, and a flow's own
``quiet_hours`` win over the workspace's. :func:`set_sending_settings` checks
every value and names the field it refuses (``quiet_hours.start``,
``caps.email.day``, ``smart_window_hours``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.models import SendingSettingsRow
from jornada.channels.policy import CONSENT_CHANNEL, DEFAULT_SENDING, WEEK, Cap, SendingSettings
from jornada.errors import InvalidInput

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
MAX_CAP = 1000  # messages per channel per period: beyond it a cap means nothing
MAX_SMART_WINDOW = WEEK  # the gate reads a week of a contact's messages


def get_sending_settings(session: Session, workspace_id: str) -> SendingSettings:
    """The workspace's settings (the defaults when it set none)."""
    return sending_settings_for(session, [workspace_id]).get(workspace_id, DEFAULT_SENDING)


def sending_settings_for(
    session: Session, workspace_ids: Iterable[str]
) -> dict[str, SendingSettings]:
    """Settings of the given workspaces that have their own, in one query."""
    ids = sorted(set(workspace_ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(SendingSettingsRow).where(SendingSettingsRow.workspace_id.in_(ids))
    )
    return {row.workspace_id: _settings(row) for row in rows}


def _settings(row: SendingSettingsRow) -> SendingSettings:
    return SendingSettings(
        quiet=(row.quiet_start, row.quiet_end),
        caps={c: Cap(day=int(v["day"]), week=int(v["week"])) for c, v in row.caps.items()},
        smart_window=timedelta(seconds=row.smart_window_seconds),
    )


def set_sending_settings(
    session: Session,
    workspace_id: str,
    *,
    quiet: tuple[str, str] | None = None,
    caps: Mapping[str, Mapping[str, int | None]] | None = None,
    smart_window: timedelta | None = None,
    now: datetime,
) -> SendingSettings:
    """Change the settings given; the others keep their value.

    ``quiet``: the quiet period (start, end), ``HH:MM`` each. ``caps``: per
    channel, ``day`` and/or ``week`` (one left out keeps its value). Raises
    :class:`InvalidInput` naming the field, with nothing changed.
    """
    current = get_sending_settings(session, workspace_id)
    new_quiet = current.quiet if quiet is None else _quiet(quiet)
    new_caps = dict(current.caps)
    for channel, change in (caps or {}).items():
        if channel not in CONSENT_CHANNEL:
            raise InvalidInput(
                f"caps: {channel!r} is not a channel ({', '.join(CONSENT_CHANNEL)})",
                field=f"caps.{channel}",
            )
        unknown = sorted(set(change) - {"day", "week"})
        if unknown:
            raise InvalidInput(
                f"caps.{channel} takes day and week, not {unknown[0]!r}",
                field=f"caps.{channel}.{unknown[0]}",
            )
        old = new_caps.get(channel, DEFAULT_SENDING.caps.get(channel, Cap(MAX_CAP, MAX_CAP)))
        day = _count(change.get("day", old.day), f"caps.{channel}.day")
        week = _count(change.get("week", old.week), f"caps.{channel}.week")
        if week < day:
            raise InvalidInput(
                f"caps.{channel}.week ({week}) must be at least caps.{channel}.day ({day})",
                field=f"caps.{channel}.week",
            )
        new_caps[channel] = Cap(day=day, week=week)
    window = current.smart_window if smart_window is None else smart_window
    if not timedelta(0) <= window <= MAX_SMART_WINDOW:
        raise InvalidInput(
            f"smart_window_hours must be from 0 to {MAX_SMART_WINDOW / timedelta(hours=1):g}",
            field="smart_window_hours",
        )
    row = session.get(SendingSettingsRow, workspace_id)
    if row is None:
        row = SendingSettingsRow(workspace_id=workspace_id)
        session.add(row)
    row.quiet_start, row.quiet_end = new_quiet
    row.caps = {c: {"day": cap.day, "week": cap.week} for c, cap in sorted(new_caps.items())}
    row.smart_window_seconds = int(window.total_seconds())
    row.updated_at = now
    session.flush()
    return _settings(row)


def _quiet(quiet: tuple[Any, Any]) -> tuple[str, str]:
    for end, value in zip(("start", "end"), quiet, strict=True):
        if not isinstance(value, str) or not _HHMM.fullmatch(value.strip()):
            raise InvalidInput(
                f"quiet_hours.{end} must be HH:MM (00:00-23:59), not {value!r}",
                field=f"quiet_hours.{end}",
            )
    return str(quiet[0]).strip(), str(quiet[1]).strip()


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAP:
        raise InvalidInput(f"{field} must be a whole number from 0 to {MAX_CAP}", field=field)
    return value


def sending_view(settings: SendingSettings, updated_at: datetime | None = None) -> dict[str, Any]:
    """What the API answers and the CLI prints."""
    return {
        "quiet_hours": {"start": settings.quiet[0], "end": settings.quiet[1]},
        "caps": {c: {"day": cap.day, "week": cap.week} for c, cap in sorted(settings.caps.items())},
        "smart_window_hours": settings.smart_window / timedelta(hours=1),
        "updated_at": updated_at,
    }


def sending_settings_view(session: Session, workspace_id: str) -> dict[str, Any]:
    """:func:`sending_view` of the workspace's settings, with when they last changed."""
    row = session.get(SendingSettingsRow, workspace_id)
    settings = _settings(row) if row is not None else DEFAULT_SENDING
    return sending_view(settings, row.updated_at if row is not None else None)
