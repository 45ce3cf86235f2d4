"""``jornada workspace sending``: a workspace's quiet hours, frequency caps and smart sending."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import click
from rich.table import Table

from jornada.channels.sending import sending_settings_view, set_sending_settings
from jornada.cli.commands import Context, console, pass_context, workspace
from jornada.clock import SystemClock
from jornada.errors import InvalidInput

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(m|min|h|d)")
_UNITS = {"m": timedelta(minutes=1), "min": timedelta(minutes=1)}
_UNITS |= {"h": timedelta(hours=1), "d": timedelta(days=1)}


def parse_quiet(text: str) -> tuple[str, str]:
    """``20:00-08:00`` → ("20:00", "08:00"); each end is checked when stored."""
    start, dash, end = text.partition("-")
    if not dash:
        raise InvalidInput(f"--quiet is START-END, e.g. 20:00-08:00, not {text!r}", field="quiet")
    return start.strip(), end.strip()


def parse_cap(text: str) -> tuple[str, dict[str, int]]:
    """``email=2/day,10/week`` → ("email", {"day": 2, "week": 10}); either period may be left out."""
    channel, equals, rest = text.partition("=")
    limits: dict[str, int] = {}
    for part in rest.split(",") if equals else []:
        count, slash, period = part.strip().partition("/")
        if not slash or period not in ("day", "week") or not count.isdigit():
            break
        limits[period] = int(count)
    else:
        if limits:
            return channel.strip(), limits
    raise InvalidInput(
        f"--cap is CHANNEL=N/day[,N/week], e.g. email=2/day,10/week, not {text!r}", field="cap"
    )


def parse_window(text: str) -> timedelta:
    """``16h``, ``90m``, ``1d`` → a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(
            f"--smart-window is a duration like 16h, 90m or 1d, not {text!r}",
            field="smart-window",
        )
    return float(match[1]) * _UNITS[match[2]]


@workspace.command("sending")
@click.option("--workspace", "workspace_name", required=True)
@click.option(
    "--quiet", default=None, help="quiet period START-END (contact's time), e.g. 20:00-08:00"
)
@click.option(
    "--cap",
    "caps",
    multiple=True,
    help="marketing cap per channel, e.g. email=2/day,10/week (repeat for more channels)",
)
@click.option("--smart-window", default=None, help="same template at most once in, e.g. 16h")
@click.option("--json", "as_json", is_flag=True, help="print the settings as JSON")
@pass_context
def workspace_sending(
    ctx: Context,
    workspace_name: str,
    quiet: str | None,
    caps: tuple[str, ...],
    smart_window: str | None,
    as_json: bool,
) -> None:
    """Show (and with options, change) the workspace's sending gate settings."""
    target = ctx.workspace(workspace_name)
    # parse everything before storing anything
    quiet_hours = parse_quiet(quiet) if quiet is not None else None
    cap_changes = dict(parse_cap(c) for c in caps)
    window = parse_window(smart_window) if smart_window is not None else None
    changing = quiet_hours is not None or bool(cap_changes) or window is not None
    with ctx.database.write() if changing else ctx.database.read() as session:
        if changing:
            set_sending_settings(
                session,
                target.id,
                quiet=quiet_hours,
                caps=cap_changes,
                smart_window=window,
                now=SystemClock().now(),
            )
        view = sending_settings_view(session, target.id)
    if as_json:
        click.echo(json.dumps(view, default=str, indent=2))
    else:
        _print(workspace_name, view)


def _print(name: str, view: dict[str, Any]) -> None:
    quiet = view["quiet_hours"]
    console.print(f"workspace {name}: sending gate settings")
    if quiet["start"] == quiet["end"]:
        console.print("quiet hours: none")
    else:
        console.print(
            f"quiet hours: {quiet['start']}-{quiet['end']} in the contact's time zone "
            "(SMS, WhatsApp, voice)"
        )
    console.print(
        f"smart sending: the same template at most once in {view['smart_window_hours']:g} h"
    )
    table = Table("channel", "marketing per day", "per week")
    for channel, cap in view["caps"].items():
        table.add_row(channel, str(cap["day"]), str(cap["week"]))
    console.print(table)
