"""``jornada flows``, ``jornada worker`` and ``jornada simulate``."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from jornada.cli.commands import Context, console, main, pass_context
from jornada.clock import SystemClock
from jornada.errors import InvalidInput
from jornada.flows import FlowDocument, install, library_flows, load_flow_file


@main.group()
def flows() -> None:
    """Flows as code: install the library, apply your own files, list what runs."""


def _install(ctx: Context, workspace_name: str, docs: list[FlowDocument]) -> None:
    target = ctx.workspace(workspace_name)
    now = SystemClock().now()
    with ctx.database.write() as session:
        for doc in docs:
            version = install(session, target.id, doc, now=now)
            console.print(f"{doc.key:<22} version {version.version}")


@flows.command("install")
@click.option("--workspace", "workspace_name", required=True)
@pass_context
def flows_install(ctx: Context, workspace_name: str) -> None:
    """Install (or update) the 15 flows that ship with Jornada."""
    _install(ctx, workspace_name, library_flows())


@flows.command("apply")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--workspace", "workspace_name", required=True)
@pass_context
def flows_apply(ctx: Context, files: tuple[Path, ...], workspace_name: str) -> None:
    """Validate flow FILES and make each the active version of its key (unchanged files keep theirs)."""
    _install(ctx, workspace_name, [load_flow_file(f) for f in files])


@flows.command("list")
@click.option("--workspace", "workspace_name", required=True)
@pass_context
def flows_list(ctx: Context, workspace_name: str) -> None:
    """Active flows with their runs by status."""
    from jornada.metrics import flows_overview

    target = ctx.workspace(workspace_name)
    statuses = ("scheduled", "active", "converted", "completed", "exited")
    table = Table("flow", "version", *statuses)
    with ctx.database.read() as session:
        for flow in flows_overview(session, target.id):
            table.add_row(
                flow["key"], str(flow["version"]), *(f"{flow['runs'][s]:,}" for s in statuses)
            )
    console.print(table)


@flows.command("schema")
def flows_schema() -> None:
    """Print the JSON Schema of flow documents (docs/flow-schema.json is this output)."""
    click.echo(flow_schema_json())


def flow_schema_json() -> str:
    from jornada.flows import FlowDocument

    schema = FlowDocument.model_json_schema(by_alias=True)
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)


@flows.command("enrol")
@click.argument("key")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--contact", "contact_id", required=True, help="contact id")
@click.option("--property", "properties", multiple=True, help="NAME=VALUE the templates see")
@pass_context
def flows_enrol(
    ctx: Context, key: str, workspace_name: str, contact_id: str, properties: tuple[str, ...]
) -> None:
    """Enrol a contact in a flow by hand, under the flow's entry rules."""
    from jornada.flows import Runner

    target = ctx.workspace(workspace_name)
    props: dict[str, str] = {}
    for item in properties:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--property")
        props[name] = value
    with ctx.database.write() as session:
        run = Runner(session, target.id, SystemClock().now()).enrol(key, contact_id, props)
        console.print(f"enrolled {contact_id} in {key}: run {run.id} ({run.status})")


@main.command()
@click.option("--idle", default=1.0, show_default=True, help="seconds to sleep when nothing is due")
@pass_context
def worker(ctx: Context, idle: float) -> None:
    """Run the scheduler (due flow steps, then the outbox) until stopped. Several may run at once."""
    from jornada.scheduler import Worker

    loop = Worker(ctx.database, SystemClock(), idle_seconds=idle)
    signal.signal(signal.SIGTERM, lambda *_: loop.stop())
    console.print("worker running (Ctrl-C to stop)")
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        loop.stop()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}:{number}: not JSON: {exc.msg}", field="events") from exc
        if not isinstance(value, dict):
            raise InvalidInput(f"{path}:{number}: each line must be a JSON object", field="events")
        rows.append(value)
    return rows


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"--{name} {value!r} is not an ISO 8601 time", field=name) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@main.command()
@click.option("--library", is_flag=True, help="simulate the 15 built-in flows")
@click.option(
    "--flows",
    "flow_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="flow files",
)
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Segment track/page payloads, one JSON object a line",
)
@click.option(
    "--contacts",
    "contacts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Segment identify payloads, one JSON object a line",
)
@click.option(
    "--until", default=None, help="ISO time to run the clock to [one day after the last event]"
)
@click.option(
    "--workspace",
    "workspace_name",
    default=None,
    help="backtest: replay this workspace's stored events instead of --events",
)
@click.option("--from", "start", default=None, help="backtest: first moment (ISO)")
@click.option("--to", "end", default=None, help="backtest: last moment (ISO)")
@click.option("--json", "as_json", is_flag=True, help="one JSON line per effect")
@pass_context
def simulate(
    ctx: Context,
    library: bool,
    flow_files: tuple[Path, ...],
    events_file: Path | None,
    contacts_file: Path | None,
    until: str | None,
    workspace_name: str | None,
    start: str | None,
    end: str | None,
    as_json: bool,
) -> None:
    """Run flows over events on a virtual clock, with the real engine, and show what they would do."""
    from jornada.simulation import simulate as run_simulation
    from jornada.simulation.backtest import load_history, report

    docs = (library_flows() if library else []) + [load_flow_file(f) for f in flow_files]
    if not docs:
        raise InvalidInput("give --library or at least one --flows FILE", field="flows")
    if workspace_name:
        begin, finish = _time(start, "from"), _time(end, "to")
        if begin is None or finish is None:
            raise InvalidInput("a backtest needs --from and --to", field="from")
        contacts, events = load_history(ctx.database, ctx.workspace(workspace_name), begin, finish)
        effects = run_simulation(docs, events, contacts=contacts, until=finish)
        rows = report(effects)
        if as_json:
            for row in rows:
                click.echo(json.dumps(row, ensure_ascii=False))
            return
        table = Table("day", "flow", "step", "action", "count")
        for row in rows:
            table.add_row(
                row["day"], row["flow"], str(row["step"] or ""), row["action"], f"{row['count']:,}"
            )
        console.print(table)
        console.print(
            f"{len(events):,} events replayed from {begin.isoformat()} to {finish.isoformat()}"
        )
        return
    if events_file is None:
        raise InvalidInput(
            "give --events FILE.jsonl (or --workspace for a backtest)", field="events"
        )
    effects = run_simulation(
        docs,
        _jsonl(events_file),
        contacts=_jsonl(contacts_file) if contacts_file else [],
        until=_time(until, "until"),
    )
    if as_json:
        for effect in effects:
            click.echo(json.dumps(effect.to_json(), ensure_ascii=False))
        return
    table = Table("at", "flow", "contact", "step", "action", "channel", "template", "detail")
    for effect in effects:
        data = effect.to_json()
        table.add_row(
            data["at"],
            effect.flow,
            effect.contact,
            effect.step or "",
            effect.action,
            effect.channel or "",
            effect.template or "",
            json.dumps(effect.detail, ensure_ascii=False, default=str),
        )
    console.print(table)
    if not effects:
        console.print("no flow did anything with these events")
