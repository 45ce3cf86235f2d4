"""``jornada score``: explain a contact's lead score, install a scoring model, run the re-check."""

from __future__ import annotations

from pathlib import Path

import click
import yaml
from rich.table import Table

from jornada.audience import (
    ScoringModelError,
    install_model,
    recheck_scores,
    refresh_score,
    score_view,
)
from jornada.cli.commands import Context, console, main, pass_context
from jornada.clock import SystemClock


@main.group()
def score() -> None:
    """Lead scoring: why a contact has its score, the workspace's model, the decay re-check."""


@score.command("explain")
@click.argument("contact_id")
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@click.option("--limit", default=20, show_default=True, help="how many reasons, newest first")
@pass_context
def score_explain(ctx: Context, contact_id: str, workspace_name: str, limit: int) -> None:
    """The score of CONTACT_ID now, the thresholds it reached and its reasons, newest first."""
    workspace = ctx.workspace(workspace_name)
    now = SystemClock().now()
    with ctx.database.write() as session:
        refresh_score(session, workspace.id, contact_id, now)
        view = score_view(session, workspace.id, contact_id, limit=limit)
    reached = ", ".join(t["name"] for t in view["thresholds"]) or "none"
    console.print(
        f"score {view['score']} (fit {view['fit']}, engagement {view['engagement']}, "
        f"other {view['adjustments']}); thresholds reached: {reached}; "
        f"model {view['model']!r} v{view['model_version']}"
    )
    table = Table("at", "points", "reason", "rule")
    for reason in view["reasons"]:
        table.add_row(
            reason["at"].isoformat(timespec="seconds"),
            str(reason["points"]),
            reason["reason"],
            reason["rule"],
        )
    console.print(table)


@score.command("apply")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@pass_context
def score_apply(ctx: Context, path: Path, workspace_name: str) -> None:
    """Install the scoring model in PATH (YAML or JSON) as the workspace's new version."""
    workspace = ctx.workspace(workspace_name)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScoringModelError(f"{path}: not YAML: {exc}", field="model") from exc
    if not isinstance(document, dict):
        raise ScoringModelError(f"{path}: a scoring model is a mapping", field="model")
    with ctx.database.write() as session:
        model, created = install_model(session, workspace.id, document, now=SystemClock().now())
    state = "installed as" if created else "unchanged,"
    console.print(f"{model.document.name!r} {state} version {model.version}")


@score.command("recheck")
@click.option("--workspace", "workspace_name", default=None, help="only this workspace")
@click.option("--limit", default=10_000, show_default=True, help="contacts per run")
@pass_context
def score_recheck(ctx: Context, workspace_name: str | None, limit: int) -> None:
    """Write decay for the scores due (run it every few minutes, e.g. from cron)."""
    workspace_id = ctx.workspace(workspace_name).id if workspace_name else None
    with ctx.database.write() as session:
        count = recheck_scores(session, SystemClock().now(), workspace_id=workspace_id, limit=limit)
    console.print(f"re-checked {count} scores")
