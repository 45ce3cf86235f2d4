"""Predictions in the admin API: a contact's newest prediction, and the model's holdout evaluation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.audience import contact_prediction, prediction_model_view

router = APIRouter(prefix="/api/v1", tags=["predictions"])


@router.get("/contacts/{contact_id}/prediction")
async def contact_prediction_detail(
    request: Request, workspace: WorkspaceDep, contact_id: str
) -> JSONResponse:
    """Probability of an order within the horizon, expected next order date, and why.

    ``contributions`` are in log-odds, largest first; with ``base_value`` they add
    up to the log-odds of ``probability``. 404 for a contact of another workspace,
    or one not scored yet.
    """
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.read() as session:
            return contact_prediction(session, workspace.id, contact_id)

    return JSONResponse(await run_in_threadpool(run))


@router.get("/predictions")
async def prediction_model(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """The newest model: version, when it was trained, the end of its data, its holdout evaluation."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.read() as session:
            return prediction_model_view(session, workspace.id)

    return JSONResponse(await run_in_threadpool(run))
