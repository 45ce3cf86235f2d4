"""Segments in the admin API: built-in and custom ones, their sizes, versions and members."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from jornada.api.admin_routes import Cursor, Limit
from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.audience import (
    SavedSegment,
    SegmentDefinition,
    builtin_segments,
    custom_segment,
    custom_segments,
    delete_segment,
    export_segment,
    find_segment,
    is_builtin,
    save_custom_segment,
    segment_members,
    segment_size,
    segment_versions,
)
from jornada.contacts.queries import contact_view
from jornada.errors import Conflict, InvalidInput

router = APIRouter(prefix="/api/v1/segments", tags=["segments"])


def _view(definition: SegmentDefinition, size: int | None) -> dict[str, Any]:
    view = {**definition.model_dump(), "builtin": True}
    return view if size is None else {**view, "size": size}


def _saved_view(saved: SavedSegment, size: int | None = None) -> dict[str, Any]:
    view = {
        **_view(saved.definition, size),
        "builtin": False,
        "version": saved.version,
        "saved_at": saved.saved_at.isoformat(),
    }
    return view


@router.get("")
async def segments_list(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """The built-in segments, the RFM cells (``rfm-*``), then the workspace's own, with sizes."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.read() as session:

            def size(definition: SegmentDefinition) -> int:
                return segment_size(session, workspace.id, definition, now)

            builtins = [_view(d, size(d)) for d in builtin_segments(session, workspace.id)]
            custom = [
                _saved_view(s, size(s.definition)) for s in custom_segments(session, workspace.id)
            ]
            return {"data": [*builtins, *custom]}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/{key}")
async def segment_detail(request: Request, workspace: WorkspaceDep, key: str) -> JSONResponse:
    """One segment: its definition and current size (and version, for the workspace's own)."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.read() as session:
            definition = find_segment(session, workspace.id, key)
            size = segment_size(session, workspace.id, definition, now)
            saved = None if is_builtin(key) else custom_segment(session, workspace.id, key)
            return _view(definition, size) if saved is None else _saved_view(saved, size)

    return JSONResponse(await run_in_threadpool(run))


@router.put("/{key}")
async def segment_save(
    request: Request,
    workspace: WorkspaceDep,
    key: str,
    document: dict[str, Any] = Body(  # noqa: B008 - FastAPI's way to take a raw JSON object
        ..., examples=[{"name": "Hesitant", "where": {"event": "Product Viewed"}}]
    ),
) -> JSONResponse:
    """Save the workspace's segment ``key`` as a new version (``{name, description?, where}``).

    201 for the first version, 200 for the next ones; 400 naming the field of a
    mistake (an unknown referenced segment, a loop of references); 409 for a built-in key.
    """
    context = get_context(request)
    if document.get("key", key) != key:
        raise InvalidInput(f"key in the body ({document['key']!r}) is not {key!r}", field="key")

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.write() as session:
            saved = save_custom_segment(session, workspace.id, {**document, "key": key}, now=now)
            return _saved_view(saved)

    view = await run_in_threadpool(run)
    return JSONResponse(view, status_code=201 if view["version"] == 1 else 200)


@router.delete("/{key}", status_code=204, response_class=Response)
async def segment_delete(request: Request, workspace: WorkspaceDep, key: str) -> Response:
    """Delete the workspace's segment ``key`` (its versions stay listed); 409 for a built-in."""
    context = get_context(request)
    if is_builtin(key):
        raise Conflict(f"{key!r} is a built-in segment and cannot be deleted", field="key")

    def run() -> None:
        with context.database.write() as session:
            delete_segment(session, workspace.id, key, now=context.clock.now())

    await run_in_threadpool(run)
    return Response(status_code=204)


@router.get("/{key}/versions")
async def segment_version_list(request: Request, workspace: WorkspaceDep, key: str) -> JSONResponse:
    """Every saved version of the workspace's segment ``key``, newest first."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.read() as session:
            return {"data": [_saved_view(s) for s in segment_versions(session, workspace.id, key)]}

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
            definition = find_segment(session, workspace.id, key)
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
            definition = find_segment(session, workspace.id, key)
            return "".join(export_segment(session, workspace.id, definition, now, format))

    body = await run_in_threadpool(run)
    filename = f"{key}.csv" if format == "csv" else f"{key}-audience.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
