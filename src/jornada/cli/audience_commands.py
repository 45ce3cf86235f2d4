"""``jornada segments``: list the segments of a workspace, export one as CSV or hashed audience."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click
from rich.table import Table

from jornada.audience import (
    EXPORT_FORMATS,
    ExportFormat,
    builtin_segment,
    builtin_segments,
    export_segment,
    segment_size,
)
from jornada.cli.commands import Context, console, main, pass_context
from jornada.clock import SystemClock


@main.group()
def segments() -> None:
    """Segments: the built-ins and RFM cells, their sizes, and exports."""


@segments.command("list")
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@pass_context
def segments_list(ctx: Context, workspace_name: str) -> None:
    """Every segment of the workspace with its size now."""
    workspace = ctx.workspace(workspace_name)
    now = SystemClock().now()
    table = Table("key", "name", "size")
    with ctx.database.read() as session:
        for definition in builtin_segments(session, workspace.id):
            size = segment_size(session, workspace.id, definition, now)
            table.add_row(definition.key, definition.name, str(size))
    console.print(table)


@segments.command("export")
@click.argument("key")
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="csv",
    show_default=True,
    help="csv: contacts and facts; audience: SHA-256 of e-mail and phone, consented contacts only",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="file to write (default: standard output)",
)
@pass_context
def segments_export(
    ctx: Context, key: str, workspace_name: str, fmt: str, output: Path | None
) -> None:
    """Export the members of segment KEY now."""
    workspace = ctx.workspace(workspace_name)
    now = SystemClock().now()
    rows = -1  # the header
    with ctx.database.read() as session:
        definition = builtin_segment(session, workspace.id, key)
        chunks = export_segment(session, workspace.id, definition, now, cast(ExportFormat, fmt))
        with (
            output.open("w", encoding="utf-8", newline="")
            if output
            else open(sys.stdout.fileno(), "w", encoding="utf-8", closefd=False)
        ) as out:
            for chunk in chunks:
                rows += chunk.count("\n")
                out.write(chunk)
    where = f" to {output}" if output else ""
    console.print(f"exported {rows} rows of segment {key} ({fmt}){where}")
