"""The inbox in the admin API: conversations, their messages, read and close."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.admin_routes import Cursor, Limit
from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.inbox import (
    close_conversation,
    conversation_detail,
    conversation_summary,
    list_conversations,
    mark_read,
)

router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"])


@router.get("/conversations")
async def conversations_list(
    request: Request,
    workspace: WorkspaceDep,
    status: str = "open",
    channel: str | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """Conversations, latest message first: ``status`` open (default), closed or all;
    ``channel`` whatsapp or sms. Each with its contact, unread count and last message."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            rows, next_cursor = list_conversations(
                session,
                workspace.id,
                status=None if status == "all" else status,
                channel=channel or None,
                limit=limit,
                cursor=cursor,
            )
            return {"data": rows, "next_cursor": next_cursor}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/conversations/{conversation_id}")
async def conversation_get(
    request: Request, workspace: WorkspaceDep, conversation_id: str
) -> JSONResponse:
    """The conversation and its messages, inbound and outbound, oldest first."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            return conversation_detail(session, workspace.id, conversation_id)

    return JSONResponse(await run_in_threadpool(run))


@router.post("/conversations/{conversation_id}/read")
async def conversation_read(
    request: Request, workspace: WorkspaceDep, conversation_id: str
) -> JSONResponse:
    """Mark the conversation read: ``unread`` becomes 0."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.write() as session:
            return conversation_summary(session, mark_read(session, workspace.id, conversation_id))

    return JSONResponse(await run_in_threadpool(run))


@router.post("/conversations/{conversation_id}/close")
async def conversation_close(
    request: Request, workspace: WorkspaceDep, conversation_id: str
) -> JSONResponse:
    """Close the conversation; the contact's next message opens a new one."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.write() as session:
            closed = close_conversation(session, workspace.id, conversation_id, context.clock.now())
            return conversation_summary(session, closed)

    return JSONResponse(await run_in_threadpool(run))
