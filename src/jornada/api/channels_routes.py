"""Channel providers and integration health in the admin API (``Authorization: Bearer <secret key>``).

Secrets are write-only: a PUT may set them, no answer ever contains one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from jornada.api.context import AppContext, WorkspaceDep, get_context
from jornada.api.responses import JSONResponse
from jornada.channels.health import integration_health
from jornada.channels.providers import (
    Keyring,
    keyring_for,
    list_providers,
    set_provider,
    unset_provider,
)
from jornada.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["channels"])


def keys_of(context: AppContext) -> Keyring:
    """The server's keyring: ``JORNADA_SECRET_KEY``, else the secret.key beside the database."""
    return keyring_for(context.settings, context.database.url)


class ProviderBody(BaseModel):
    """A channel's provider: options (shown back), secrets (never shown back)."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(default=None, description="smtp for email (the default for email)")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "smtp: url (smtp[s]://user:pass@host:port) or host, port, username; security "
            "(starttls | tls | none), from, reply_to, dkim_selector, dkim_domain. "
            "Every provider: rate_per_second (messages/s), daily_cap (messages a day)"
        ),
    )
    secrets: dict[str, str | None] = Field(
        default_factory=dict,
        description="smtp: password, dkim_private_key (PEM). Omitted: kept; null: removed",
    )
    base_url: str | None = Field(default=None, description="HTTP providers: where their API is")


@router.get("/channels")
async def channels_list(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """The workspace's providers, secrets masked; channels not listed run in the sandbox."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.read() as session:
            configs = list_providers(session, workspace.id, keys=keys_of(context))
            return {"data": [c.view() for c in configs]}

    return JSONResponse(await run_in_threadpool(run))


@router.put("/channels/{channel}")
async def channel_set(
    request: Request, workspace: WorkspaceDep, channel: str, body: ProviderBody
) -> JSONResponse:
    """Set (or change) the provider of ``channel``; the answer is the stored setting, masked."""
    context = get_context(request)

    def run() -> dict[str, Any]:
        with context.database.write() as session:
            config = set_provider(
                session,
                workspace.id,
                channel,
                provider=body.provider,
                options=body.options,
                secrets=body.secrets,
                base_url=body.base_url,
                now=context.clock.now(),
                keys=keys_of(context),
            )
            return config.view()

    return JSONResponse(await run_in_threadpool(run))


@router.delete("/channels/{channel}", status_code=204)
async def channel_unset(request: Request, workspace: WorkspaceDep, channel: str) -> None:
    """Remove the provider of ``channel``: its messages go back to the sandbox."""
    database = get_context(request).database

    def run() -> bool:
        with database.write() as session:
            return unset_provider(session, workspace.id, channel)

    if not await run_in_threadpool(run):
        raise NotFound(f"no provider is set for {channel}", field="channel")


@router.get("/health/integrations")
async def health_integrations(request: Request, workspace: WorkspaceDep) -> JSONResponse:
    """Each configured channel ok or down (with its open incident and queued messages),
    and the latest incidents, open and closed."""
    database = get_context(request).database

    def run() -> dict[str, Any]:
        with database.read() as session:
            return integration_health(session, workspace.id)

    return JSONResponse(await run_in_threadpool(run))
