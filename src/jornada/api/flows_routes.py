"""Flows in the admin API: what runs, and what each flow earns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.metrics import flow_stats, flows_overview

router = APIRouter(prefix="/api/v1/flows", tags=["flows"])


@router.get("")
async def flows_list(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """Active flows with their runs by status."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            return {"data": flows_overview(session, workspace.id)}

    return JSONResponse(await run_in_threadpool(run))


@router.get("/{key}/stats")
async def flow_statistics(request: Request, workspace: WorkspaceDep, key: str) -> JSONResponse:
    """Entered, active, completed, exited by reason; sends and suppressions per step and channel;
    conversions, attributed revenue (5 days after a click, 1 day after an open or delivery) and,
    with a holdout, the uplift of the conversion rate with a 95% interval."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            return flow_stats(session, workspace.id, key)

    return JSONResponse(await run_in_threadpool(run))
