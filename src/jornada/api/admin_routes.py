"""Admin API for a workspace (``Authorization: Bearer <secret key>``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.audience import rfm_for_contact
from jornada.channels.timeline import contact_messages
from jornada.contacts import ContactFilter, contact_events, get_contact, list_contacts
from jornada.contacts.queries import MAX_LIMIT, contact_view, event_view

router = APIRouter(prefix="/api/v1", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[str | None, Query(description="the next_cursor of the previous page")]


@router.get("/contacts")
async def contacts_list(
    request: Request,
    workspace: WorkspaceDep,
    email: str | None = None,
    phone: str | None = None,
    user_id: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """Contacts of the workspace, filtered by email, phone (any format) or user id."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            rows, next_cursor = list_contacts(
                session,
                workspace.id,
                ContactFilter(email, phone, user_id),
                limit=limit,
                cursor=cursor,
            )
            return {"data": [contact_view(c) for c in rows], "next_cursor": next_cursor}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/contacts/{contact_id}")
async def contact_detail(
    request: Request, workspace: WorkspaceDep, contact_id: str
) -> JSONResponse:
    """One contact: traits, commerce facts, consent, tags, stage, RFM. A merged id gives the survivor."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.read() as session:
            contact = get_contact(session, workspace.id, contact_id)
            rfm = rfm_for_contact(session, workspace.id, contact.id, context.clock.now())
            return {**contact_view(contact), "rfm": rfm.view() if rfm else None}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/contacts/{contact_id}/events")
async def contact_event_list(
    request: Request,
    workspace: WorkspaceDep,
    contact_id: str,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """The contact's events, newest first."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            rows, next_cursor = contact_events(
                session, workspace.id, contact_id, limit=limit, cursor=cursor
            )
            return {"data": [event_view(e) for e in rows], "next_cursor": next_cursor}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/contacts/{contact_id}/messages")
async def contact_message_list(
    request: Request,
    workspace: WorkspaceDep,
    contact_id: str,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """The messages flows meant for the contact, newest first: sent, or why not (yet)."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            rows, next_cursor = contact_messages(
                session, workspace.id, contact_id, limit=limit, cursor=cursor
            )
            return {"data": rows, "next_cursor": next_cursor}

    return JSONResponse(await run_in_threadpool(run))
