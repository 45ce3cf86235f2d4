"""The WhatsApp Cloud API webhook, one per workspace: ``/webhooks/whatsapp/{workspace_id}``.

GET is Meta's subscription handshake (``hub.verify_token`` must be the stored
verify token). POST carries notifications signed with the app secret
(``X-Hub-Signature-256``); a bad or missing signature is a 401 and nothing is
stored. Inbound messages become ``Message Replied`` events through ingestion
(which opens the contact's 24-hour window and stops flows waiting for a reply);
statuses move the sent message to delivered, opened (read) or failed.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jornada.api.channels_routes import keys_of
from jornada.api.context import AppContext, get_context
from jornada.channels.providers import get_provider
from jornada.channels.statuses import advance
from jornada.channels.whatsapp.webhook import (
    Inbound,
    apply_status,
    find_sent,
    parse_notification,
    valid_signature,
)
from jornada.contacts import Contact, get_contact
from jornada.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from jornada.events.canonical import MESSAGE_REPLIED
from jornada.ingest import accept_messages
from jornada.workspaces import Workspace, WorkspaceRef

router = APIRouter(tags=["webhooks"])


def _settings(context: AppContext, workspace_id: str) -> tuple[WorkspaceRef, dict[str, str]]:
    """The workspace and its WhatsApp Cloud secrets; 404 when it has none."""
    with context.database.read() as session:
        workspace = session.get(Workspace, workspace_id)
        config = (
            get_provider(session, workspace_id, "whatsapp", keys=keys_of(context))
            if workspace is not None
            else None
        )
        if workspace is None or config is None or config.provider != "whatsapp_cloud":
            raise NotFound("no WhatsApp Cloud API provider here", field="workspace_id")
        return WorkspaceRef.of(workspace), dict(config.secrets)


@router.get("/webhooks/whatsapp/{workspace_id}", response_class=PlainTextResponse)
async def verify_subscription(request: Request, workspace_id: str) -> PlainTextResponse:
    """Meta's handshake: echo ``hub.challenge`` when ``hub.verify_token`` is ours, else 403."""
    context = get_context(request)
    _, secrets = await run_in_threadpool(_settings, context, workspace_id)
    query = request.query_params
    token = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not _same(token, secrets.get("verify_token", "")):
        raise Forbidden("the verify token does not match", field="hub.verify_token")
    return PlainTextResponse(query.get("hub.challenge", ""))


def _same(given: str, stored: str) -> bool:
    return bool(stored) and hmac.compare_digest(given.encode(), stored.encode())


@router.post("/webhooks/whatsapp/{workspace_id}")
async def notification(request: Request, workspace_id: str) -> dict[str, int]:
    """Inbound messages and statuses, signed with the app secret (``X-Hub-Signature-256``)."""
    context = get_context(request)
    body = await request.body()
    signature = request.headers.get("x-hub-signature-256")

    def run() -> dict[str, int]:
        workspace, secrets = _settings(context, workspace_id)
        if not valid_signature(secrets.get("app_secret", ""), body, signature):
            raise Unauthorized("bad or missing X-Hub-Signature-256", field="X-Hub-Signature-256")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise InvalidInput("the body is not JSON", field="body") from exc
        now = context.clock.now()
        inbound, statuses = parse_notification(payload, now)
        updated, calls = 0, []
        if inbound or statuses:
            with context.database.write() as session:
                for update in statuses:
                    updated += apply_status(session, workspace.id, update) is not None
                calls = [_replied(session, workspace, message) for message in inbound]
        if calls:  # after the commit, as any ingestion: flows and windows see the replies
            accept_messages(context.database, workspace, calls, received_at=now)
        return {"messages": len(calls), "statuses": updated}

    return await run_in_threadpool(run)


def _replied(session: Session, workspace: WorkspaceRef, message: Inbound) -> dict[str, Any]:
    """The ``Message Replied`` call for ``message``: its contact found by phone, else a new one."""
    properties: dict[str, Any] = {
        "channel": "whatsapp",
        "text": message.text,
        "type": message.type,
        "whatsapp_message_id": message.wamid,
    }
    if message.payload is not None:
        properties["button_payload"] = message.payload
    who: dict[str, Any] = {"anonymousId": f"whatsapp:{message.phone}"}
    found = session.scalar(
        select(Contact.id)
        .where(Contact.workspace_id == workspace.id, Contact.phone == message.phone)
        .order_by(Contact.merged_into_id.is_not(None), Contact.id)
        .limit(1)
    )
    if found is not None:
        contact = get_contact(session, workspace.id, found)
        who = {"userId": contact.user_id} if contact.user_id else {"anonymousId": contact.id}
    answered = (
        find_sent(session, workspace.id, message.context_wamid) if message.context_wamid else None
    )
    if answered is not None:  # it quotes (or taps a button of) a message of ours
        advance(answered, "replied", message.at)
        properties.update(message_id=answered.id, template=answered.template)
        if answered.run_id:
            properties["run_id"] = answered.run_id
    traits: dict[str, Any] = {"phone": message.phone}
    return {
        "type": "track",
        "event": MESSAGE_REPLIED,
        **who,
        "messageId": f"whatsapp-{message.wamid}",  # Meta retries a notification: once only
        "timestamp": message.at.isoformat(),
        "properties": properties,
        "context": {"traits": traits},
    }
