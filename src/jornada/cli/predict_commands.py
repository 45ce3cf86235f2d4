"""``jornada predict``: train the order predictions with an honest holdout report; show one contact's."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import click
from rich.table import Table

from jornada.audience.predict import HORIZON_DAYS, WINDOWS, contact_prediction, save, train
from jornada.cli.commands import Context, console, main, pass_context
from jornada.clock import SystemClock
from jornada.errors import InvalidInput


@main.group()
def predict() -> None:
    """Predictions: probability of an order soon and the expected next order date, explained."""


def _aware(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 time", field="as-of") from None
    if moment.tzinfo is None:
        raise InvalidInput("give --as-of with an offset, e.g. 2018-09-01T00:00:00Z", field="as-of")
    return moment


def _day(iso: str) -> str:
    return iso[:10]


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _sig(value: float | None) -> str:
    """Three significant digits, without an exponent for the small numbers Brier scores are."""
    if value is None:
        return "n/a"
    return f"{value:.3g}" if value == 0 or abs(value) >= 1e-4 else f"{value:.7f}"


def _pct(value: float | None) -> str:
    """A probability as a percentage with three significant digits (Olist's are tiny)."""
    if value is None:
        return "n/a"
    if 0 < value < 1e-6:
        return "<0.0001%"
    return f"{100 * value:.3g}%"


@predict.command("train")
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@click.option(
    "--horizon",
    type=click.IntRange(min=1),
    default=HORIZON_DAYS,
    show_default=True,
    help="days ahead the probability speaks of",
)
@click.option(
    "--windows",
    type=click.IntRange(min=1),
    default=WINDOWS,
    show_default=True,
    help="training snapshots, one horizon apart",
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    help="end of the data, ISO 8601 with offset (default: just after the last event)",
)
@pass_context
def predict_train(
    ctx: Context, workspace_name: str, horizon: int, windows: int, as_of: str | None
) -> None:
    """Train on the workspace's history, print the holdout evaluation, store everyone's scores."""
    workspace = ctx.workspace(workspace_name)
    now = SystemClock().now()
    started = time.monotonic()
    with ctx.database.read() as session:
        result = train(
            session,
            workspace.id,
            now=now,
            horizon_days=horizon,
            windows=windows,
            as_of=_aware(as_of),
        )
    with ctx.database.write() as session:
        version = save(session, workspace.id, result, now)
    _report(workspace_name, version, result.evaluation, time.monotonic() - started)


def _report(name: str, version: int, ev: dict[str, Any], seconds: float) -> None:
    horizon = ev["horizon_days"]
    console.print(
        f"[bold]Predictions for workspace {name}[/bold]: model v{version}, "
        f"an order within {horizon} days, data up to {ev['as_of'][:16]} UTC "
        f"({seconds:.1f} s)"
    )
    train_, holdout = ev["train"], ev["holdout"]
    sets = Table("set", "cutoffs", "contacts", "positives", "rate", title="Time-based holdout")
    cutoffs = train_["cutoffs"]
    span = f"{len(cutoffs)}: {_day(cutoffs[-1])} … {_day(cutoffs[0])}" if cutoffs else "none"
    sets.add_row(
        "train",
        span,
        f"{train_['contacts']:,}",
        f"{train_['positives']:,}",
        _pct(train_["base_rate"]),
    )
    sets.add_row(
        "holdout",
        f"{_day(holdout['cutoff'])}, orders until {_day(holdout['until'])}",
        f"{holdout['contacts']:,}",
        f"{holdout['positives']:,}",
        _pct(holdout["base_rate"]),
    )
    console.print(sets)
    metrics = Table("metric", "model", "baseline", title="Evaluation on the holdout")
    interval = ev["roc_auc_ci95"]
    auc = _num(ev["roc_auc"])
    if interval:
        auc += f" (95% CI {interval[0]:.3f}-{interval[1]:.3f})"
    metrics.add_row("ROC AUC", auc, f"recency only: {_num(ev['recency_auc'])}; chance: 0.500")
    metrics.add_row("Brier score", _sig(ev["brier"]), f"base rate: {_sig(ev['base_rate_brier'])}")
    console.print(metrics)
    calibration = Table(
        "bin",
        "predicted range",
        "mean predicted",
        "observed rate",
        "contacts",
        "positives",
        title="Calibration on the holdout (equal-size bins by predicted probability)",
    )
    for i, row in enumerate(ev["calibration"], start=1):
        calibration.add_row(
            str(i),
            f"{_pct(row['lower'])} - {_pct(row['upper'])}",
            _pct(row["mean_predicted"]),
            _pct(row["observed_rate"]),
            f"{row['count']:,}",
            f"{row['positives']:,}",
        )
    console.print(calibration)
    for note in ev.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {note}")
    if holdout["positives"] == 0:
        console.print(
            "[yellow]note:[/yellow] nobody ordered in the holdout window (does the data trail "
            "off at its end?); --as-of an earlier time measures a window with orders"
        )
    nxt = ev["next_order"]
    if nxt["contacts"]:
        console.print(
            f"Expected next order date on the holdout: median absolute error "
            f"{nxt['median_abs_days']:.1f} days over {nxt['contacts']} contacts who ordered again "
            f"(last order + mean gap alone: {_num(nxt['heuristic_median_abs_days'], 1)} days)"
        )
    else:
        console.print(
            "Expected next order date: not measurable on the holdout "
            "(no contact with an estimate ordered again before the end of the data)"
        )
    final = ev["final"]
    console.print(
        f"Scored {final['scored_contacts']:,} contacts with a model refit on "
        f"{len(final['cutoffs'])} snapshots ({final['contacts']:,} rows, "
        f"{final['positives']:,} positives): mean probability {_pct(final['mean_probability'])}, "
        f"{final['with_next_order_date']:,} with an expected next order date. "
        f"Stored as model v{version}."
    )


@predict.command("show")
@click.argument("contact_id")
@click.option("--workspace", "workspace_name", required=True, help="workspace name")
@click.option("--json", "as_json", is_flag=True, help="print the prediction as JSON")
@pass_context
def predict_show(ctx: Context, contact_id: str, workspace_name: str, as_json: bool) -> None:
    """A contact's newest prediction and what each feature added to it."""
    workspace = ctx.workspace(workspace_name)
    with ctx.database.read() as session:
        view = contact_prediction(session, workspace.id, contact_id)
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    next_at = view["expected_next_order_at"] or f"unknown: {view['next_order_reason']}"
    console.print(
        f"Contact {view['contact_id']} (model v{view['model_version']}, as of "
        f"{(view['as_of'] or '')[:16]} UTC): probability of an order within "
        f"{view['horizon_days']} days {_pct(view['probability'])}; "
        f"expected next order {next_at}"
    )
    table = Table("feature", "value", "contribution (log-odds)")
    table.add_row("base value", "", f"{view['base_value']:+.3f}")
    for item in view["contributions"]:
        value = item["value"]
        table.add_row(
            item["feature"],
            "missing" if value is None else f"{value:g}",
            f"{item['contribution']:+.3f}",
        )
    console.print(table)
