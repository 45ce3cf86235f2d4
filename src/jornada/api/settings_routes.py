"""A workspace's settings in the admin API (``Authorization: Bearer <secret key>``): the sending gate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jornada.api.context import WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.channels.sending import sending_settings_view, set_sending_settings

router = APIRouter(prefix="/api/v1/settings", tags=["settings"])


class QuietHoursBody(BaseModel):
    """The quiet period, in the contact's time zone: no SMS, WhatsApp or voice from start to end."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(description="HH:MM, e.g. 20:00")
    end: str = Field(description="HH:MM, e.g. 08:00 (equal to start: no quiet hours)")


class CapBody(BaseModel):
    """Marketing messages a contact may get on a channel in any 24 hours / any 7 days."""

    model_config = ConfigDict(extra="forbid")

    day: int | None = Field(default=None, description="0-1000; omitted: kept")
    week: int | None = Field(default=None, description="0-1000, at least day; omitted: kept")


class SendingBody(BaseModel):
    """The fields given replace the stored ones; the others are kept."""

    model_config = ConfigDict(extra="forbid")

    quiet_hours: QuietHoursBody | None = None
    caps: dict[str, CapBody] | None = Field(
        default=None, description="per channel: email, whatsapp, sms, voice, push"
    )
    smart_window_hours: float | None = Field(
        default=None,
        ge=0,
        le=168,
        allow_inf_nan=False,
        description="0-168: the same marketing template reaches a contact once in this window",
    )


@router.get("/sending")
async def sending_get(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """Quiet hours, frequency caps per channel and the smart-sending window of the workspace."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            return sending_settings_view(session, workspace.id)

    return JSONResponse(await run_in_threadpool(run))


@router.put("/sending")
async def sending_put(request: Request, workspace: WorkspaceDep, body: SendingBody) -> JSONResponse:
    """Change the gate's settings; 400 naming the field (nothing changed) when one is wrong."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.write() as session:
            set_sending_settings(
                session,
                workspace.id,
                quiet=(body.quiet_hours.start, body.quiet_hours.end) if body.quiet_hours else None,
                caps={
                    channel: cap.model_dump(exclude_none=True)
                    for channel, cap in (body.caps or {}).items()
                },
                smart_window=(
                    timedelta(hours=body.smart_window_hours)
                    if body.smart_window_hours is not None
                    else None
                ),
                now=context.clock.now(),
            )
            return sending_settings_view(session, workspace.id)

    return JSONResponse(await run_in_threadpool(run))
