"""Inbound e-mail reports: bounces (RFC 3464) and complaints (RFC 5965) feed the suppression list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.channels.email.intake import take_report
from jornada.channels.email.reports import MAX_REPORT_BYTES
from jornada.errors import PayloadTooLarge

router = APIRouter(prefix="/api/v1/inbound", tags=["inbound"])


@router.post(
    "/email",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def inbound_email(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """A bounce or complaint report as the raw message body (``multipart/report``).

    A permanent failure (Status 5.x.x) suppresses the address (``hard_bounce``) and
    marks the returned message ``bounced``; a complaint suppresses it
    (``complaint``); delays change nothing. Answers what was done.
    """
    context = get_context(request)
    body = await request.body()
    if len(body) > MAX_REPORT_BYTES:
        raise PayloadTooLarge(f"a report may be at most {MAX_REPORT_BYTES:,} bytes", field="body")

    def run() -> dict[str, Any]:
        with context.database.write() as session:
            return take_report(session, workspace.id, body, context.clock.now())

    return JSONResponse(await run_in_threadpool(run))
