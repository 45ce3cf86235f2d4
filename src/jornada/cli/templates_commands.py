"""``jornada templates``: see what a message will look like, and who would get a fallback."""

from __future__ import annotations

import click
from rich.table import Table
from sqlalchemy import select

from jornada.channels.catalog import library_templates, template_for
from jornada.channels.templates import Template, lint, render
from jornada.cli.commands import Context, console, main, pass_context
from jornada.clock import SystemClock
from jornada.contacts import Contact, get_contact, recommended_for
from jornada.contacts.queries import contact_view
from jornada.errors import NotFound
from jornada.workspaces import Workspace


@main.group()
def templates() -> None:
    """Message templates: list, preview for a contact, lint against your contacts."""


def _template(ctx: Context, workspace_id: str, template_id: str) -> Template:
    with ctx.database.read() as session:
        template = template_for(session, workspace_id, template_id)
    if template is None:
        raise NotFound(
            f"no template {template_id!r}; `jornada templates list` shows them", field="template"
        )
    return template


def _variables(shop: Workspace, contact: Contact | None) -> dict[str, object]:
    import orjson

    view = orjson.loads(orjson.dumps(contact_view(contact), default=str)) if contact else {}
    return {
        "contact": view,
        "trigger": {},
        "coupon": {
            "code": "CUPOM-EXEMPLO",
            "discount": "10%",
            "expires_at": "2030-01-01T12:00:00+00:00",
        },
        "shop": {"name": shop.name, "url": (shop.url or "").rstrip("/")},
    }


@templates.command("list")
def templates_list() -> None:
    """The library's templates (a workspace may replace any of them)."""
    table = Table("template", "channel", "subject")
    for key, template in sorted(library_templates().items()):
        table.add_row(key, template.channel, template.subject or "")
    console.print(table)


@templates.command("preview")
@click.argument("template_id")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--contact", "contact_id", required=True, help="contact id (see the admin API)")
@pass_context
def templates_preview(ctx: Context, template_id: str, workspace_name: str, contact_id: str) -> None:
    """Render TEMPLATE_ID for one contact and say which variables fell back."""
    target = ctx.workspace(workspace_name)
    template = _template(ctx, target.id, template_id)
    with ctx.database.read() as session:
        contact = get_contact(session, target.id, contact_id)
        shop = session.get(Workspace, target.id)
        assert shop is not None
        values = _variables(shop, contact)
        # the products the message would suggest, from the contact's own orders and views
        values["recommended"] = recommended_for(session, contact, {}, now=SystemClock().now())
        rendered = render(
            template,
            values,
            locale=contact.locale or "pt_BR",
            timezone=contact.timezone,
        )
    if rendered.subject is not None:
        click.echo(f"Subject: {rendered.subject}\n")
    click.echo(rendered.text if rendered.text is not None else rendered.body)
    if rendered.missing:
        console.print(f"\n[yellow]fell back on: {', '.join(rendered.missing)}[/yellow]")


@templates.command("lint")
@click.argument("template_id")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--limit", default=5000, show_default=True, help="contacts to check")
@pass_context
def templates_lint(ctx: Context, template_id: str, workspace_name: str, limit: int) -> None:
    """Which variables of TEMPLATE_ID would fall back, and for how many (and which) contacts."""
    target = ctx.workspace(workspace_name)
    template = _template(ctx, target.id, template_id)
    with ctx.database.read() as session:
        shop = session.get(Workspace, target.id)
        assert shop is not None
        contacts = session.scalars(
            select(Contact)
            .where(Contact.workspace_id == target.id, Contact.merged_into_id.is_(None))
            .limit(limit)
        ).all()
        rows = [_variables(shop, c)["contact"] for c in contacts]
    extra = {k: v for k, v in _variables(shop, None).items() if k != "contact"}
    report = lint(template, rows, variables=extra)  # type: ignore[arg-type]
    if not report:
        console.print(f"no contact of {len(rows):,} would fall back on anything")
        return
    table = Table("variable", "contacts", "for example")
    for name, ids in sorted(report.items(), key=lambda kv: -len(kv[1])):
        table.add_row(name, f"{len(ids):,} of {len(rows):,}", ", ".join(ids[:3]))
    console.print(table)
