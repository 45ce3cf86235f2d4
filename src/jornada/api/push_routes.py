"""Web Push for a shop's pages: the VAPID key, subscriptions, and the scripts browsers run.

The ``/v1/push/*`` endpoints take the workspace's **write key** like the
Segment endpoints (Basic auth user, or ``writeKey`` in the body or the query)
and answer any origin (CORS ``*``, no cookies): a shop's site calls them from
the browser, and the write key is public anyway. ``/push/sw.js`` and
``/push/subscribe.js`` need no key.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jornada.api.channels_routes import keys_of
from jornada.api.context import AppContext, basic_auth_user, get_context, resolve_key
from jornada.api.responses import JSONResponse
from jornada.channels.providers import get_provider
from jornada.channels.push import parse_subscription, subscribe, unsubscribe
from jornada.channels.push.scripts import script
from jornada.contacts import Identity, get_contact
from jornada.errors import InvalidInput, JornadaError, NotFound
from jornada.ingest import accept_messages, parse_body
from jornada.workspaces import WorkspaceRef

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "86400",
}
CONSENT_SOURCE = "browser permission"  # the consent history's source for a subscription
MAX_BODY = 8 * 1024  # bytes: a subscription is a few hundred


class _CorsRoute(APIRoute):
    """Every answer carries the CORS headers, errors included (a browser can read why)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handler(request)
            except JornadaError as exc:
                response = JSONResponse(exc.to_dict(), status_code=exc.http_status)
            response.headers.update(CORS)
            return response

        return with_cors


router = APIRouter(tags=["web push"], route_class=_CorsRoute)


async def _workspace(
    context: AppContext, request: Request, body: dict[str, Any] | None = None
) -> WorkspaceRef:
    key = basic_auth_user(request.headers.get("authorization"))
    if key is None and body is not None and isinstance(body.get("writeKey"), str):
        key = body["writeKey"]
    if key is None:
        key = request.query_params.get("writeKey")
    return await resolve_key(context, key, "write")


@router.options("/v1/push/key", include_in_schema=False)
@router.options("/v1/push/subscriptions", include_in_schema=False)
async def preflight() -> Response:
    return Response(status_code=204)


@router.get("/v1/push/key")
async def public_key(request: Request) -> dict[str, str]:
    """The workspace's VAPID public key: the ``applicationServerKey`` to subscribe with."""
    context = get_context(request)
    workspace = await _workspace(context, request)

    def read() -> str:
        with context.database.read() as session:
            config = get_provider(session, workspace.id, "push", keys=keys_of(context))
        if config is None or config.provider != "webpush":
            raise NotFound(
                "Web Push is not set up here: run `jornada keys vapid`", field="workspace"
            )
        return str(config.options["public_key"])

    return {"publicKey": await run_in_threadpool(read)}


def _who(body: dict[str, Any]) -> dict[str, str]:
    who = {k: body[k] for k in ("userId", "anonymousId") if isinstance(body.get(k), str)}
    who = {k: v.strip() for k, v in who.items() if v.strip()}
    if not who:
        raise InvalidInput("send the browser's userId or anonymousId", field="userId")
    return who


def _contact_of(session: Session, workspace_id: str, who: dict[str, str]) -> str:
    """The (surviving) contact the identify just resolved ``who`` to."""
    for kind, key in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
        if key not in who:
            continue
        found = session.scalar(
            select(Identity.contact_id).where(
                Identity.workspace_id == workspace_id,
                Identity.kind == kind,
                Identity.value == who[key],
            )
        )
        if found is not None:
            return get_contact(session, workspace_id, found).id
    raise NotFound("no contact has this userId or anonymousId", field="userId")


@router.post("/v1/push/subscriptions", status_code=201)
async def add_subscription(request: Request) -> JSONResponse:
    """Store a browser's subscription for the contact, and its push marketing consent.

    Body: ``{userId | anonymousId, subscription: {endpoint, keys: {p256dh, auth}}}``
    (``PushSubscription.toJSON()``). The contact is found or made as an
    ``identify`` would, and ``push_marketing`` consent is recorded with source
    "browser permission" (the browser asked the person).
    """
    context = get_context(request)
    body = parse_body(await request.body(), limit=MAX_BODY)
    workspace = await _workspace(context, request, body)
    who = _who(body)
    subscription = parse_subscription(body.get("subscription"))
    user_agent = request.headers.get("user-agent")

    def run() -> None:
        now = context.clock.now()
        identify: dict[str, Any] = {
            "type": "identify",
            **who,
            "timestamp": now.isoformat(),
            "traits": {"consent": {"push_marketing": True}},
            "context": {"consent_source": CONSENT_SOURCE},
        }
        if user_agent:
            identify["context"]["userAgent"] = user_agent
        result = accept_messages(context.database, workspace, [identify], received_at=now)
        if result.rejected:
            raise InvalidInput(result.rejected[0].reason, field=result.rejected[0].field)
        with context.database.write() as session:
            contact_id = _contact_of(session, workspace.id, who)
            subscribe(
                session, workspace.id, contact_id, subscription, user_agent=user_agent, now=now
            )

    await run_in_threadpool(run)
    return JSONResponse({"success": True}, status_code=201)


@router.delete("/v1/push/subscriptions")
async def remove_subscription(request: Request) -> dict[str, Any]:
    """Forget the subscription of ``{endpoint}`` (the browser unsubscribed)."""
    context = get_context(request)
    body = parse_body(await request.body(), limit=MAX_BODY)
    workspace = await _workspace(context, request, body)
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise InvalidInput("send the subscription's endpoint", field="endpoint")

    def run() -> int:
        with context.database.write() as session:
            return unsubscribe(session, workspace.id, [endpoint.strip()])

    return {"success": True, "removed": await run_in_threadpool(run)}


@router.get("/push/sw.js", include_in_schema=False)
async def service_worker() -> Response:
    """The service worker: shows each push and opens its page on a click."""
    return Response(script("sw.js"), media_type="application/javascript")


@router.get("/push/subscribe.js", include_in_schema=False)
async def subscribe_helper() -> Response:
    """The helper a shop's page includes: ``jornadaPush.subscribe({writeKey, userId})``."""
    return Response(script("subscribe.js"), media_type="application/javascript")
