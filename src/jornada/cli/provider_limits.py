"""``--rate-per-second`` and ``--daily-cap`` on every ``jornada channels set <channel>`` command.

Each provider kind takes the two limits (checked in ``channels.providers.settings``),
so they are added to each command of the group here rather than by each command.
"""

from __future__ import annotations

import functools
from typing import Any

import click

from jornada.channels.providers import keyring_for
from jornada.channels.providers.settings import describe_limits, set_limits, validate_limits
from jornada.channels.templates import CHANNELS
from jornada.cli.commands import Context, console
from jornada.clock import SystemClock


class LimitedGroup(click.Group):
    """A group whose channel commands also take ``--rate-per-second`` and ``--daily-cap``.

    The command stores the provider as before; the limits given are then set on
    it (left out, the provider has none: ``set`` replaces the options).
    """

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if (name or cmd.name) in CHANNELS:
            _with_limits(cmd, str(name or cmd.name))
        super().add_command(cmd, name)


def _with_limits(command: click.Command, channel: str) -> None:
    command.params += [
        click.Option(
            ["--rate-per-second"],
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="messages per second the provider accepts (sends are paced to it)",
        ),
        click.Option(
            ["--daily-cap"],
            type=click.IntRange(min=1),
            default=None,
            help="messages per day (the workspace's day) the provider accepts; the rest wait",
        ),
    ]
    inner = command.callback
    if inner is None:
        return

    @functools.wraps(inner)
    def callback(
        *args: Any, rate_per_second: float | None, daily_cap: int | None, **kwargs: Any
    ) -> Any:
        # checked before the command stores anything
        validate_limits({"rate_per_second": rate_per_second, "daily_cap": daily_cap})
        result = inner(*args, **kwargs)
        if rate_per_second is None and daily_cap is None:
            return result
        ctx = click.get_current_context().ensure_object(Context)
        target = ctx.workspace(str(kwargs["workspace_name"]))
        with ctx.database.write() as session:
            config = set_limits(
                session,
                target.id,
                channel,
                rate_per_second=rate_per_second,
                daily_cap=daily_cap,
                now=SystemClock().now(),
                keys=keyring_for(ctx.settings, ctx.database.url),
            )
        console.print(f"{channel}: {describe_limits(config.options).removeprefix(', ')}")
        return result

    command.callback = callback
