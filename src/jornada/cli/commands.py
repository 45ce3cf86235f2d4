"""``jornada`` commands: serve, db, workspace, import, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import OperationalError

from jornada.clock import SystemClock
from jornada.config import Settings, load_settings
from jornada.db import Database
from jornada.errors import Conflict, JornadaError
from jornada.ingest.importer import ImportReport, import_messages
from jornada.workspaces import WorkspaceRef, create_workspace, get_workspace_by_name

console = Console(stderr=True)
if not console.is_terminal:
    console.width = 160  # piped or captured output: do not squeeze tables into 80 columns


class Context:
    """Settings and database for one CLI invocation, opened on first use."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._database: Database | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def database(self) -> Database:
        """The database, its schema brought up to date first (as `serve` does)."""
        if self._database is None:
            from jornada.migrations import upgrade

            upgrade(self.settings.database_url)
            self._database = Database(
                self.settings.database_url, sqlite_synchronous=self.settings.sqlite_synchronous
            )
        return self._database

    def workspace(self, name: str) -> WorkspaceRef:
        with self.database.read() as session:
            return WorkspaceRef.of(get_workspace_by_name(session, name))


pass_context = click.make_pass_decorator(Context, ensure=True)


class JornadaGroup(click.Group):
    """Turns a JornadaError into a one-line message and exit code 1, instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JornadaError as exc:
            where = f" ({exc.field})" if exc.field else ""
            console.print(f"[red]error{where}:[/red] {exc.message}")
            sys.exit(1)
        except FileNotFoundError as exc:
            console.print(f"[red]error:[/red] {exc}")
            sys.exit(1)
        except OperationalError as exc:
            console.print(
                "[red]error (JORNADA_DATABASE_URL):[/red] the database cannot be used: "
                f"{exc.orig or exc}"
            )
            sys.exit(1)


@click.group(cls=JornadaGroup)
@click.version_option(package_name="jornada")
def main() -> None:
    """Jornada: customer engagement for online stores.

    Every setting is an environment variable JORNADA_*; the database is
    JORNADA_DATABASE_URL (default sqlite:///var/jornada.db).
    """


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Apply every pending migration to JORNADA_DATABASE_URL."""
    from jornada.migrations import upgrade

    upgrade(ctx.settings.database_url)
    console.print("database is up to date")


@main.command()
@click.option("--host", default=None, help="interface to listen on [JORNADA_HOST, 127.0.0.1]")
@click.option("--port", type=int, default=None, help="port [JORNADA_PORT, 8000]")
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="run the scheduler in this process (use --no-worker with separate `jornada worker`s)",
)
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="HTTP server processes (more use more cores; the scheduler stays in this one)",
)
@pass_context
def serve(ctx: Context, host: str | None, port: int | None, worker: bool, processes: int) -> None:
    """Migrate the database, then serve the API (and run due flow steps) until Ctrl-C."""
    import uvicorn

    from jornada.api import create_app
    from jornada.scheduler import Worker

    settings = ctx.settings
    app = create_app(settings, database=ctx.database)
    host, port = host or settings.host, port or settings.port
    loop = Worker(ctx.database, SystemClock()) if worker else None
    if loop is not None:
        loop.start()
    console.print(f"Jornada listening on http://{host}:{port}  (Ctrl-C to stop)")
    try:
        if processes > 1:
            # each process builds its app from the same JORNADA_* settings
            uvicorn.run(
                "jornada.api:create_app",
                factory=True,
                workers=processes,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
            )
        else:
            uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    finally:
        if loop is not None:
            loop.stop()


@main.group()
def workspace() -> None:
    """Workspaces: one per shop."""


@workspace.command("create")
@click.argument("name")
@click.option("--timezone", default=None, help="IANA zone [JORNADA_DEFAULT_TIMEZONE]")
@click.option("--currency", default=None, help="ISO 4217 code [JORNADA_DEFAULT_CURRENCY]")
@click.option("--url", default=None, help="the shop's address, used in message links")
@click.option("--json", "as_json", is_flag=True, help="print id, name and keys as JSON")
@pass_context
def workspace_create(
    ctx: Context,
    name: str,
    timezone: str | None,
    currency: str | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Create workspace NAME and print its keys (shown once: they are stored hashed)."""
    with ctx.database.write() as session:
        created = create_workspace(
            session,
            name,
            now=SystemClock().now(),
            timezone=timezone or ctx.settings.default_timezone,
            currency=currency or ctx.settings.default_currency,
            url=url,
        )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "id": created.id,
                    "name": created.name,
                    "write_key": created.write_key,
                    "secret_key": created.secret_key,
                }
            )
        )
    else:
        click.echo(f"workspace {created.name} ({created.id})")
        click.echo(f"write key:  {created.write_key}   (Segment clients, /v1/*)")
        click.echo(f"secret key: {created.secret_key}   (admin API, keep it private)")


@main.group("import")
def import_group() -> None:
    """Load history: the Olist dataset or a shop's own contact list."""


def _progress(total: int | None, label: str) -> Progress:
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal and total is None,
    )


def _print_report(report: ImportReport, problems: list[str]) -> None:
    console.print(
        f"imported {report.accepted:,} events ({report.duplicates:,} already there), "
        f"{len(problems):,} rows with problems"
    )
    for line in problems[:50]:
        console.print(f"  [yellow]{line}[/yellow]")
    if len(problems) > 50:
        console.print(f"  … and {len(problems) - 50:,} more")


@import_group.command("olist")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--workspace", "workspace_name", required=True, help="workspace to import into")
@pass_context
def import_olist(ctx: Context, directory: Path, workspace_name: str) -> None:
    """Import the Olist e-commerce dataset from DIRECTORY (Olist's CSV layout, .csv or .csv.gz)."""
    from jornada.ingest.sources.olist import RowProblem, count_orders, read_olist

    target = ctx.workspace(workspace_name)
    problems: list[RowProblem] = []
    orders = count_orders(directory)
    with _progress(orders, "orders") as progress:
        task = progress.add_task("import", total=orders)
        last_order: list[str] = [""]

        def messages() -> Iterator[tuple[str, dict[str, Any]]]:
            for message in read_olist(directory, problems):
                props = message.get("properties") or {}
                if message.get("event") == "Order Completed":
                    last_order[0] = str(props.get("order_id"))
                    progress.advance(task)
                yield f"order {last_order[0]}", message

        report = import_messages(ctx.database, target, messages(), clock=SystemClock())
    _print_report(
        report,
        [f"{p.file}:{p.line}: {p.reason}" for p in problems]
        + [f"{p.where}: {p.reason}" for p in report.problems],
    )


@import_group.group("csv")
def import_csv() -> None:
    """Import CSV files."""


@import_csv.command("contacts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workspace", "workspace_name", required=True, help="workspace to import into")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    required=True,
    metavar="COLUMN=FIELD",
    help="e.g. --map E-mail=email --map Celular=phone --map Nome=name "
    "--map Aceita_email=consent.email_marketing",
)
@pass_context
def import_csv_contacts(
    ctx: Context, file: Path, workspace_name: str, mapping: tuple[str, ...]
) -> None:
    """Import a contact list; rows that cannot be read are reported with their line."""
    from jornada.ingest.sources.csv_contacts import parse_mapping, read_contacts

    target = ctx.workspace(workspace_name)
    columns = parse_mapping(list(mapping))
    with _progress(None, "contacts") as progress:
        task = progress.add_task("import", total=None)
        report = import_messages(
            ctx.database,
            target,
            read_contacts(file, columns, now=SystemClock().now()),
            clock=SystemClock(),
            batch_size=1000,
            on_batch=lambda n: progress.advance(task, n),
        )
    _print_report(report, [f"{p.where}: {p.reason}" for p in report.problems])


def _existing_demo(ctx: Context, name: str, keys_file: Path) -> dict[str, str] | None:
    """The demo's keys if it was seeded before; a stale keys file (database reset) is dropped."""
    with ctx.database.read() as session:
        try:
            workspace_id = get_workspace_by_name(session, name).id
        except JornadaError:
            workspace_id = None
    keys: dict[str, str] | None = json.loads(keys_file.read_text()) if keys_file.exists() else None
    if workspace_id is None:
        if keys is not None:
            keys_file.unlink()
        return None
    if keys is None or keys.get("id") != workspace_id:
        raise Conflict(
            f"workspace {name!r} exists but its keys are not in {keys_file}; "
            "delete var/ to start over, or pick another --workspace",
            field="workspace",
        )
    return keys


DEMO_URL = "https://loja-demo.jornada.dev"
LIVE_WINDOW = timedelta(days=2)  # the demo's last days go through the flows, as if live


def _seed_demo(
    ctx: Context, name: str, keys_file: Path, *, contacts: int, seed: int
) -> dict[str, str]:
    """History as an import (no flow fires for it), then the library, then the last two days live."""
    from jornada.demo import demo_messages
    from jornada.flows import install, library_flows
    from jornada.ingest import accept_messages

    clock = SystemClock()
    now = clock.now()
    with ctx.database.write() as session:
        created = create_workspace(
            session,
            name,
            now=now,
            timezone=ctx.settings.default_timezone,
            currency=ctx.settings.default_currency,
            url=DEMO_URL,
        )
    keys = {
        "id": created.id,
        "name": created.name,
        "write_key": created.write_key,
        "secret_key": created.secret_key,
    }
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps(keys, indent=2))
    keys_file.chmod(0o600)
    target = ctx.workspace(name)
    messages = list(demo_messages(now, seed=seed, contacts=contacts))
    cut = now - LIVE_WINDOW
    history = [m for m in messages if datetime.fromisoformat(m["timestamp"]) < cut]
    recent = [m for m in messages if datetime.fromisoformat(m["timestamp"]) >= cut]
    with _progress(None, "demo history") as progress:
        task = progress.add_task("seed", total=None)
        report = import_messages(
            ctx.database,
            target,
            ((f"demo message {i}", m) for i, m in enumerate(history)),
            clock=clock,
            on_batch=lambda n: progress.advance(task, n),
        )
    with ctx.database.write() as session:
        for doc in library_flows():
            install(session, target.id, doc, now=cut)
    for moment, group in groupby(recent, key=lambda m: m["timestamp"]):
        accept_messages(
            ctx.database, target, list(group), received_at=datetime.fromisoformat(moment)
        )
    console.print(
        f"seeded {report.accepted + len(recent):,} events for {contacts:,} contacts; the 15 library "
        f"flows are installed and ran over the last {LIVE_WINDOW.days} days"
    )
    for problem in report.problems[:10]:
        console.print(f"  [yellow]{problem.where}: {problem.reason}[/yellow]")
    return keys


@main.command()
@click.option("--workspace", "workspace_name", default="demo", show_default=True)
@click.option("--contacts", default=2000, show_default=True, help="people in the synthetic store")
@click.option("--seed", default=42, show_default=True)
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("var/demo.json"),
    show_default=True,
    help="where the demo's keys are kept (they are stored hashed in the database)",
)
@pass_context
def demo(ctx: Context, workspace_name: str, contacts: int, seed: int, keys_file: Path) -> None:
    """Create the demo workspace with a synthetic Brazilian store; reuse it if it exists."""
    keys = _existing_demo(ctx, workspace_name, keys_file)
    if keys is not None:
        console.print(f"demo workspace {workspace_name!r} already seeded; keys in {keys_file}")
    else:
        keys = _seed_demo(ctx, workspace_name, keys_file, contacts=contacts, seed=seed)
    settings = ctx.settings
    base = f"http://{settings.host}:{settings.port}"
    console.print(
        f"\n[bold]write key[/bold]  {keys['write_key']}\n[bold]secret key[/bold] {keys['secret_key']}\n"
        f"\nTry it:\n  curl -u {keys['write_key']}: {base}/v1/track -H 'Content-Type: application/json' \\\n"
        f'    -d \'{{"userId": "cliente-1", "event": "Product Viewed", '
        f'"properties": {{"product_id": "p1", "price": "99.90"}}}}\'\n'
        f"  curl -H 'Authorization: Bearer {keys['secret_key']}' '{base}/api/v1/contacts?user_id=cliente-1'\n",
        soft_wrap=True,
    )
