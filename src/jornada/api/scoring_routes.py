"""Lead scoring in the admin API: a contact's score with its reasons, and the workspace's model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.audience import (
    active_model,
    install_model,
    model_versions,
    refresh_score,
    score_view,
)

router = APIRouter(prefix="/api/v1", tags=["scoring"])

ReasonsLimit = Annotated[int, Query(ge=1, le=500, description="how many reasons, newest first")]


@router.get("/contacts/{contact_id}/score")
async def contact_score(
    request: Request, workspace: WorkspaceDep, contact_id: str, limit: ReasonsLimit = 50
) -> JSONResponse:
    """The contact's lead score now: fit, engagement, thresholds reached, reasons newest first.

    Reading brings the score up to date first (decay since the last change,
    fit rules), writing that as reasons like any other change.
    """
    context = get_context(request)

    def run() -> dict[str, Any]:
        now = context.clock.now()
        with context.database.read() as session:
            stale = refresh_score(session, workspace.id, contact_id, now, dry_run=True)
            if not stale:
                return score_view(session, workspace.id, contact_id, limit=limit)
        with context.database.write() as session:
            refresh_score(session, workspace.id, contact_id, now)
            return score_view(session, workspace.id, contact_id, limit=limit)

    return JSONResponse(await run_in_threadpool(run))


@router.get("/scoring")
async def scoring_model(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """The active scoring model (the workspace's latest, else Jornada's default) and all versions."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            model = active_model(session, workspace.id)
            return {
                "version": model.version,
                "default": model.version == 0,
                "model": model.document.model_dump(mode="json"),
                "versions": model_versions(session, workspace.id),
            }

    return JSONResponse(await run_in_threadpool(run))


@router.put("/scoring")
async def scoring_model_put(
    request: Request,
    workspace: WorkspaceDep,
    document: Annotated[dict[str, Any], Body(description="a scoring model (docs/scoring.md)")],
) -> JSONResponse:
    """Validate and install a scoring model; 400 names the field of a mistake.

    A changed document becomes a new version (201); earlier versions are kept.
    Sending the active document again changes nothing (200).
    """
    context = get_context(request)

    def run() -> tuple[dict[str, Any], bool]:
        with context.database.write() as session:
            model, created = install_model(session, workspace.id, document, now=context.clock.now())
            return {
                "version": model.version,
                "default": False,
                "model": model.document.model_dump(mode="json"),
                "versions": model_versions(session, workspace.id),
            }, created

    body, created = await run_in_threadpool(run)
    return JSONResponse(body, status_code=201 if created else 200)
