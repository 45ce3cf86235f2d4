"""The page at ``/``: what this Jornada holds and where to go next."""

from __future__ import annotations

from html import escape

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from jornada.api.context import AppContext
from jornada.contacts import Contact, Order
from jornada.events import Event
from jornada.workspaces import Workspace


def _counts(context: AppContext) -> list[tuple[str, int, int, int]]:
    with context.database.read() as session:
        rows = []
        for workspace in session.scalars(select(Workspace).order_by(Workspace.name)):
            ws = workspace.id
            contacts = session.scalar(
                select(func.count())
                .select_from(Contact)
                .where(Contact.workspace_id == ws, Contact.merged_into_id.is_(None))
            )
            events = session.scalar(
                select(func.count()).select_from(Event).where(Event.workspace_id == ws)
            )
            orders = session.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.workspace_id == ws, Order.status == "completed")
            )
            rows.append((workspace.name, contacts or 0, events or 0, orders or 0))
        return rows


async def home_page(context: AppContext) -> str:
    rows = await run_in_threadpool(_counts, context)
    body = (
        "".join(
            f"<tr><td>{escape(name)}</td><td>{c:,}</td><td>{e:,}</td><td>{o:,}</td></tr>"
            for name, c, e, o in rows
        )
        or '<tr><td colspan="4">No workspace yet: <code>jornada workspace create NAME</code></td></tr>'
    )
    return f"""<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8"><title>Jornada</title>
<style>body{{font:16px system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem;color:#1d2433}}
table{{border-collapse:collapse;width:100%}}td,th{{padding:.4rem .6rem;border-bottom:1px solid #dde;text-align:left}}
td:not(:first-child),th:not(:first-child){{text-align:right}}code{{background:#f3f4f8;padding:.1rem .3rem}}</style>
</head><body>
<h1>Jornada</h1>
<p>Customer engagement for online stores. This server accepts events on the Segment HTTP API
(<code>POST /v1/track</code>, <code>/v1/identify</code>, <code>/v1/batch</code>…) and serves the admin API.</p>
<table><thead><tr><th>Workspace</th><th>Contacts</th><th>Events</th><th>Orders</th></tr></thead>
<tbody>{body}</tbody></table>
<p><a href="/api/docs">API reference</a> · <a href="/api/openapi.json">OpenAPI</a></p>
</body></html>"""
