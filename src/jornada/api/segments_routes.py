"""Segments in the admin API: the built-ins, their sizes and their members."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jornada.api.admin_routes import Cursor, Limit
from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.audience import (
    SegmentDefinition,
    builtin_segment,
    builtin_segments,
    export_segment,
    segment_members,
    segment_size,
)
from jornada.contacts.queries import contact_view

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])


def _view(definition: SegmentDefinition, size: int) -> dict[str, Any]:
    return {**definition.model_dump(), "builtin": True, "size": size}


@router.get("")
async def segments_list(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """The built-in segments and the RFM cells (``rfm-*``) with their current sizes."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.read() as session:
            return {
                "data": [
                    _view(d, segment_size(session, workspace.id, d, now))
                    for d in builtin_segments(session, workspace.id)
                ]
            }

    return JSONResponse(await run_in_threadpool(run))


@router.get("/{key}")
async def segment_detail(request: Request, workspace: WorkspaceDep, key: str) -> JSONResponse:
    """One segment: its definition and current size."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.read() as session:
            definition = builtin_segment(session, workspace.id, key)
            return _view(definition, segment_size(session, workspace.id, definition, now))

    return JSONResponse(await run_in_threadpool(run))


@router.get("/{key}/members")
async def segment_member_list(
    request: Request,
    workspace: WorkspaceDep,
    key: str,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JSONResponse:
    """The segment's contacts now, by contact id, in the shape of ``/api/v1/contacts``."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.read() as session:
            definition = builtin_segment(session, workspace.id, key)
            rows, next_cursor = segment_members(
                session, workspace.id, definition, now, limit=limit, cursor=cursor
            )
            return {"data": [contact_view(c) for c in rows], "next_cursor": next_cursor}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/{key}/export", response_class=Response)
async def segment_export(
    request: Request,
    workspace: WorkspaceDep,
    key: str,
    format: Literal["csv", "audience"] = "csv",
) -> Response:
    """The segment's members as CSV, or as a hashed custom audience (consented contacts only)."""
    context = get_context(request)

    def run() -> str:
        now = context.clock.now()
        with context.database.read() as session:
            definition = builtin_segment(session, workspace.id, key)
            return "".join(export_segment(session, workspace.id, definition, now, format))

    body = await run_in_threadpool(run)
    filename = f"{key}.csv" if format == "csv" else f"{key}-audience.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
