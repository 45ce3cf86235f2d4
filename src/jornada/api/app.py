"""``create_app(settings)``: the ASGI application, with one handler for every Jornada error."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from jornada import __version__
from jornada.api import (
    admin_routes,
    channels_routes,
    flows_routes,
    inbound_routes,
    inbox_routes,
    ingest_routes,
    predictions_routes,
    push_routes,
    scoring_routes,
    segments_routes,
    settings_routes,
    tracking_routes,
    twilio_routes,
    whatsapp_routes,
)
from jornada.api.context import AppContext
from jornada.api.home import home_page
from jornada.api.responses import JSONResponse
from jornada.clock import Clock, SystemClock
from jornada.config import Settings
from jornada.db import Database
from jornada.errors import JornadaError


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or Settings()
    database = database or Database(
        settings.database_url, sqlite_synchronous=settings.sqlite_synchronous
    )
    app = FastAPI(
        title="Jornada",
        version=__version__,
        description="Customer engagement for online stores. Ingestion speaks the Segment HTTP API.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        default_response_class=JSONResponse,
    )
    app.state.jornada = AppContext(settings, database, clock or SystemClock())

    @app.exception_handler(JornadaError)
    async def _jornada_error(_request: Request, exc: JornadaError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"][1:]) or str(first["loc"][0])
        return JSONResponse(
            {"code": "invalid_input", "message": first["msg"], "field": field}, status_code=400
        )

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(await home_page(app.state.jornada))

    app.include_router(ingest_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(flows_routes.router)
    app.include_router(segments_routes.router)
    app.include_router(scoring_routes.router)
    app.include_router(predictions_routes.router)
    app.include_router(channels_routes.router)
    app.include_router(settings_routes.router)
    app.include_router(inbound_routes.router)
    app.include_router(inbox_routes.router)
    app.include_router(tracking_routes.router)
    app.include_router(whatsapp_routes.router)
    app.include_router(push_routes.router)
    app.include_router(twilio_routes.router)
    return app
