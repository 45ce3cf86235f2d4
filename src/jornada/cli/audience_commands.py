"""``jornada segments``: list, save (apply) and export the segments of a workspace."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click
import yaml
from rich.table import Table

from jornada.audience import (
    EXPORT_FORMATS,
    ExportFormat,
    SegmentDefinitionError,
    builtin_segments,
    custom_segments,
    export_segment,
    find_segment,
    save_custom_segment,
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
    """Every segment of the workspace with its size now: built-ins, then the workspace's own."""
    workspace = ctx.workspace(workspace_name)
    now = SystemClock().now()
    table = Table("key", "name", "size", "version")
    with ctx.database.read() as session:
        for definition in builtin_segments(session, workspace.id):
            size = segment_size(session, workspace.id, definition, now)
            table.add_row(definition.key, definition.name, str(size), "built-in")
        for saved in custom_segments(session, workspace.id):
            size = segment_size(session, workspace.id, saved.definition, now)
            table.add_row(
                saved.definition.key, saved.definition.name, str(size), str(saved.version)
            )
    console.print(table)


@segments.command("apply")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@pass_context
def segments_apply(ctx: Context, files: tuple[Path, ...], workspace_name: str) -> None:
    """Save the segment definitions in FILES (YAML or JSON; one or a list per file) as new versions.

    All are checked first; nothing is saved if one is wrong.
    """
    workspace = ctx.workspace(workspace_name)
    documents: list[tuple[Path, dict[str, object]]] = []
    for path in files:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SegmentDefinitionError(f"{path}: not YAML or JSON: {exc}", field="file") from exc
        for document in loaded if isinstance(loaded, list) else [loaded]:
            if not isinstance(document, dict):
                raise SegmentDefinitionError(f"{path}: a segment is a mapping", field="file")
            documents.append((path, document))
    now = SystemClock().now()
    with ctx.database.write() as session:  # one transaction: all saved, or none
        saved = []
        for path, document in documents:
            try:
                saved.append(save_custom_segment(session, workspace.id, document, now=now))
            except SegmentDefinitionError as exc:
                raise SegmentDefinitionError(f"{path}: {exc.message}", field=exc.field) from exc
    for item in saved:
        console.print(f"segment {item.definition.key} saved as version {item.version}")


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
        definition = find_segment(session, workspace.id, key)
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
