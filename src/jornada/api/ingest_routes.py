"""Segment HTTP Tracking API: ``/v1/identify|track|page|screen|group|alias|batch``.

Existing Segment clients work unchanged: the write key comes as the Basic
auth user (empty password) or as ``writeKey`` in the body; a 200 means the
event is durably stored. Errors say which field and why.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from jornada.api.context import basic_auth_user, get_context, resolve_key
from jornada.api.responses import JSONResponse
from jornada.errors import InvalidInput
from jornada.ingest import accept_batch_body, accept_messages, parse_body
from jornada.ingest.schemas import BatchBody, IngestResponse

router = APIRouter(prefix="/v1", tags=["ingestion (Segment-compatible)"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}}
        },
    }
}


async def _read(request: Request, limit: int) -> tuple[dict[str, Any], str | None]:
    key = basic_auth_user(request.headers.get("authorization"))
    body = parse_body(await request.body(), limit=limit)
    if key is None and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    return body, key


def _single(kind: str) -> Any:
    async def endpoint(request: Request) -> JSONResponse:
        context = get_context(request)
        body, key = await _read(request, context.settings.max_message_bytes)
        workspace = await resolve_key(context, key, "write")
        received_at = context.clock.now()
        result = await run_in_threadpool(
            accept_messages,
            context.database,
            workspace,
            [body],
            received_at=received_at,
            default_type=kind,
        )
        if result.rejected:
            rejection = result.rejected[0]
            raise InvalidInput(rejection.reason, field=rejection.field)
        return JSONResponse({"success": True, "duplicate": result.duplicates == 1})

    endpoint.__name__ = f"ingest_{kind}"
    endpoint.__doc__ = f"Record a Segment `{kind}` call."
    return endpoint


for _kind in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(
        f"/{_kind}",
        _single(_kind),
        methods=["POST"],
        openapi_extra=_BODY_DOC,
        summary=f"Segment {_kind}",
    )


@router.post(
    "/batch",
    response_model=IngestResponse,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BatchBody.model_json_schema()}},
        }
    },
)
async def ingest_batch(request: Request) -> JSONResponse:
    """Record up to 500 KB of messages; valid ones are kept, rejected ones listed by index.

    Answers 400 only when no message at all could be accepted.
    """
    context = get_context(request)
    body, key = await _read(request, context.settings.max_batch_bytes)
    workspace = await resolve_key(context, key, "write")
    result = await run_in_threadpool(
        accept_batch_body,
        context.database,
        workspace,
        body,
        received_at=context.clock.now(),
        max_message_bytes=context.settings.max_message_bytes,
    )
    payload = result.to_dict()
    if result.rejected and result.accepted == 0 and result.duplicates == 0:
        first = result.rejected[0]
        payload.update(
            code="invalid_batch",
            message=f"no message accepted; message {first.index}: {first.field}: {first.reason}",
        )
        return JSONResponse(payload, status_code=400)
    return JSONResponse(payload)
