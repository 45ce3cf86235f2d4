"""Flows in the admin API: what runs, and what each flow earns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.flows import Runner
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


class Enrolment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: str = Field(min_length=1, max_length=26)
    properties: dict[str, Any] = Field(
        default_factory=dict, description="what the flow's templates see as `trigger`"
    )


@router.post("/{key}/enrolments", status_code=201)
async def flow_enrol(
    request: Request, workspace: WorkspaceDep, key: str, body: Enrolment
) -> JSONResponse:
    """Enrol a contact by hand under the flow's entry rules (manual / API trigger).

    404 for an unknown flow or contact; 409, saying which rule, when the entry
    rules refuse (already in the flow, re-entry too soon, entry filter).
    """
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.write() as session:
            started = Runner(session, workspace.id, context.clock.now()).enrol(
                key, body.contact_id, body.properties
            )
            return {
                "run_id": started.id,
                "flow": started.flow_key,
                "version_id": started.flow_version_id,
                "contact_id": started.contact_id,
                "status": started.status,
                "holdout": started.holdout,
                "entered_at": started.entered_at.isoformat(),
            }

    return JSONResponse(await run_in_threadpool(run), status_code=201)
