"""Public links in e-mails: the open pixel, click redirects and one-click unsubscribe.

Every link carries a signed token (``jornada.channels.tracking``); a bad one is
a 404. What they record goes through ingestion like any event (``Message
Opened``, ``Message Clicked``, ``Unsubscribed`` with the consent withdrawn), so
profiles, ``last_engaged_at`` and flows see it. The first open of a message and
the first click on each of its links make an event; repeats only answer.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from jornada.api.channels_routes import keys_of
from jornada.api.context import AppContext, get_context
from jornada.channels.models import Message
from jornada.channels.statuses import advance_by_id
from jornada.channels.tracking import Purpose, links, read_token, trackable
from jornada.contacts import Contact, get_contact
from jornada.errors import NotFound
from jornada.events.canonical import MESSAGE_CLICKED, MESSAGE_OPENED, UNSUBSCRIBED
from jornada.flows import FlowRun
from jornada.ingest import accept_messages
from jornada.workspaces import Workspace, WorkspaceRef

router = APIRouter(tags=["tracking"])

#: A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, max-age=0"}


@dataclass(frozen=True)
class _Tracked:
    """A token's message, its contact (the survivor of any merge), workspace and flow."""

    message_id: int
    channel: str
    template: str
    body: str
    run_id: str | None
    flow: str | None
    workspace: WorkspaceRef
    contact_id: str
    user_id: str | None
    email: str | None
    locale: str | None
    link: int | None


def _find(context: AppContext, purpose: Purpose, token: str) -> _Tracked:
    found = read_token(keys_of(context), purpose, token)
    if found is None:
        raise NotFound("this link is not valid", field="token")
    with context.database.read() as session:
        message = session.get(Message, found.message_id)
        workspace = session.get(Workspace, message.workspace_id) if message else None
        if message is None or workspace is None:
            raise NotFound("this link is not valid any more", field="token")
        contact: Contact = get_contact(session, message.workspace_id, message.contact_id)
        flow = (
            session.scalar(select(FlowRun.flow_key).where(FlowRun.id == message.run_id))
            if message.run_id
            else None
        )
        return _Tracked(
            message_id=message.id,
            channel=message.channel,
            template=message.template,
            body=message.body,
            run_id=message.run_id,
            flow=flow,
            workspace=WorkspaceRef.of(workspace),
            contact_id=contact.id,
            user_id=contact.user_id,
            email=contact.email or message.to_address,
            locale=contact.locale,
            link=found.link,
        )


def _record(
    context: AppContext,
    tracked: _Tracked,
    event: str,
    now: datetime,
    *,
    status: Literal["opened", "clicked"] | None = None,
    message_key: str | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    consent_source: str | None = None,
) -> None:
    """Move the message's status, then ingest ``event`` for its contact."""
    if status is not None:
        with context.database.write() as session:
            advance_by_id(session, tracked.message_id, status, now)
    # the contact is named by its user id, else by its own id as an anonymous id plus its e-mail
    who: dict[str, Any] = (
        {"userId": tracked.user_id} if tracked.user_id else {"anonymousId": tracked.contact_id}
    )
    context_traits = {**({"email": tracked.email} if tracked.email else {}), **(traits or {})}
    call: dict[str, Any] = {
        "type": "track",
        "event": event,
        **who,
        "timestamp": now.isoformat(),
        "properties": {
            "message_id": tracked.message_id,
            "channel": tracked.channel,
            "template": tracked.template,
            **({"flow": tracked.flow, "run_id": tracked.run_id} if tracked.flow else {}),
            **(properties or {}),
        },
        "context": {
            "traits": context_traits,
            **({"consent_source": consent_source} if consent_source else {}),
        },
    }
    if message_key is not None:
        call["messageId"] = message_key
    accept_messages(context.database, tracked.workspace, [call], received_at=now)


@router.get("/o/{token}", include_in_schema=False)
async def open_pixel(request: Request, token: str) -> Response:
    """The open pixel: records ``Message Opened`` (first open), answers a 1x1 GIF."""
    context = get_context(request)

    def run() -> None:
        tracked = _find(context, "open", token)
        _record(
            context,
            tracked,
            MESSAGE_OPENED,
            context.clock.now(),
            status="opened",
            message_key=f"jornada-open-{tracked.message_id}",
        )

    await run_in_threadpool(run)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/c/{token}", include_in_schema=False)
async def click(request: Request, token: str) -> RedirectResponse:
    """A tracked link: records ``Message Clicked``, redirects (302) to the message's own URL."""
    context = get_context(request)

    def run() -> str:
        tracked = _find(context, "click", token)
        targets = links(tracked.body)
        index = tracked.link if tracked.link is not None else -1
        if not 0 <= index < len(targets) or not trackable(targets[index]):
            raise NotFound("this link is not in the message", field="token")
        url = targets[index]
        _record(
            context,
            tracked,
            MESSAGE_CLICKED,
            context.clock.now(),
            status="clicked",
            message_key=f"jornada-click-{tracked.message_id}-{index}",
            properties={"url": url, "link": index},
        )
        return url

    url = await run_in_threadpool(run)
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


# -- unsubscribe -------------------------------------------------------------------------
_PAGES = {
    "pt": {
        "lang": "pt-BR",
        "title": "Descadastrar",
        "ask": "Deixar de receber e-mails de marketing de {shop} em {address}?",
        "button": "Descadastrar",
        "done": "Pronto: {address} não receberá mais e-mails de marketing de {shop}.",
        "note": "Mensagens sobre seus pedidos continuam chegando.",
    },
    "en": {
        "lang": "en",
        "title": "Unsubscribe",
        "ask": "Stop marketing e-mails from {shop} to {address}?",
        "button": "Unsubscribe",
        "done": "Done: {address} will get no more marketing e-mails from {shop}.",
        "note": "Messages about your orders will still arrive.",
    },
}


def _language(tracked: _Tracked, request: Request) -> str:
    preferred = tracked.locale or request.headers.get("accept-language", "")
    return "en" if preferred.lower().startswith("en") else "pt"


def _page(tracked: _Tracked, request: Request, *, done: bool, token: str) -> HTMLResponse:
    words = _PAGES[_language(tracked, request)]
    fill = {"shop": escape(tracked.workspace.name), "address": escape(tracked.email or "")}
    if done:
        main = f"<p>{words['done'].format(**fill)}</p><p>{words['note']}</p>"
    else:
        main = (
            f"<p>{words['ask'].format(**fill)}</p>"
            f'<form method="post" action="/u/{escape(token)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{words["button"]}</button></form>'
        )
    html = (
        f'<!DOCTYPE html><html lang="{words["lang"]}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{words['title']}</title></head>"
        '<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">'
        f"<h1>{words['title']}</h1>{main}</body></html>"
    )
    return HTMLResponse(html, headers=NO_STORE)


@router.get("/u/{token}", include_in_schema=False)
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """Asks before unsubscribing: a link scanner's GET must not opt anyone out (RFC 8058 §4)."""
    context = get_context(request)
    tracked = await run_in_threadpool(_find, context, "unsubscribe", token)
    return _page(tracked, request, done=False, token=token)


@router.post("/u/{token}", include_in_schema=False)
async def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058 ``List-Unsubscribe=One-Click``), or the page's button.

    Withdraws ``email_marketing`` consent with its source and time, through
    ingestion (an ``Unsubscribed`` event), so the gate stops marketing e-mail;
    transactional e-mail still goes, so the address is not put on the suppression list.
    """
    context = get_context(request)

    def run() -> _Tracked:
        tracked = _find(context, "unsubscribe", token)
        _record(
            context,
            tracked,
            UNSUBSCRIBED,
            context.clock.now(),
            properties={"method": "list-unsubscribe"},
            traits={"consent": {"email_marketing": False}},
            consent_source=f"unsubscribe:message:{tracked.message_id}",
        )
        return tracked

    tracked = await run_in_threadpool(run)
    return _page(tracked, request, done=True, token=token)
