"""The WhatsApp Cloud API webhook, one per workspace: ``/webhooks/whatsapp/{workspace_id}``.

GET is Meta's subscription handshake (``hub.verify_token`` must be the stored
verify token). POST carries notifications signed with the app secret
(``X-Hub-Signature-256``); a bad or missing signature is a 401 and nothing is
stored. Inbound messages become ``Message Replied`` events through ingestion
(which opens the contact's 24-hour window and stops flows waiting for a reply)
and then messages of the contact's WhatsApp conversation (``jornada.inbox``);
statuses move the sent message to delivered, opened (read) or failed.

A tapped button or list row carries its id and title (``reply_id``,
``reply_title``). An NPS reply id ``nps-<score>`` is also a ``Survey Answered``
(kind ``nps``); a range ``nps-<low>-<high>`` (the first step, see
docs/channels.md) queues the template ``nps-score-<low>-<high>`` asking for the
exact score in the window the tap just opened.
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
    NPS_FOLLOW_UP,
    Inbound,
    find_sent,
    nps_range,
    nps_score,
    parse_notification,
    take_status,
    valid_signature,
)
from jornada.contacts import Contact, get_contact
from jornada.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from jornada.events.canonical import MESSAGE_REPLIED, SURVEY_ANSWERED
from jornada.inbox import readable, record_inbound
from jornada.ingest import accept_messages
from jornada.outbox import enqueue
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
        taken: list[str] = []
        calls, answered = [], []
        if inbound or statuses:
            with context.database.write() as session:
                taken = [take_status(session, workspace.id, u, now) for u in statuses]
                for message in inbound:
                    made, quoted = _replied(session, workspace, message)
                    calls += made
                    answered.append(quoted)
        if calls:  # after the commit, as any ingestion: flows and windows see the replies
            accept_messages(context.database, workspace, calls, received_at=now)
        if inbound:  # after ingestion, which made the contact of a number never seen
            with context.database.write() as session:
                for message, quoted in zip(inbound, answered, strict=True):
                    _to_inbox(session, workspace, message, quoted)
        return {
            "messages": len(inbound),
            "statuses": taken.count("applied"),
            "held": taken.count("held"),
        }

    return await run_in_threadpool(run)


def _contact_id(session: Session, workspace: WorkspaceRef, phone: str) -> str | None:
    """The contact with ``phone`` (one not merged away first), if any."""
    return session.scalar(
        select(Contact.id)
        .where(Contact.workspace_id == workspace.id, Contact.phone == phone)
        .order_by(Contact.merged_into_id.is_not(None), Contact.id)
        .limit(1)
    )


def _to_inbox(
    session: Session, workspace: WorkspaceRef, message: Inbound, answered: int | None
) -> None:
    """``message`` in the contact's WhatsApp conversation (once, whatever Meta resends)."""
    contact_id = _contact_id(session, workspace, message.phone)
    if contact_id is None:  # ingestion refused the call: there is no one to hold it
        return
    payload: dict[str, Any] = {"type": message.type}
    if message.payload is not None:  # a tapped button or list row
        payload |= {"reply_id": message.payload, "reply_title": message.text}
    if message.media is not None:
        payload["media"] = message.media
    if message.name:
        payload["profile_name"] = message.name
    if answered is not None:
        payload["in_reply_to"] = answered
    record_inbound(
        session,
        workspace.id,
        contact_id,
        "whatsapp",
        readable(message.type, message.text),
        payload,
        message.wamid,
        message.at,
    )


def _replied(
    session: Session, workspace: WorkspaceRef, message: Inbound
) -> tuple[list[dict[str, Any]], int | None]:
    """The ``Message Replied`` call for ``message`` (its contact found by phone, else a new
    one), followed by a ``Survey Answered`` when it is an NPS score; and the id of our message
    it answers, if it quotes one."""
    properties: dict[str, Any] = {
        "channel": "whatsapp",
        "text": message.text,
        "type": message.type,
        "whatsapp_message_id": message.wamid,
    }
    if message.payload is not None:  # a tapped button or list row
        properties["button_payload"] = message.payload
        properties["reply_id"] = message.payload
        properties["reply_title"] = message.text
    who: dict[str, Any] = {"anonymousId": f"whatsapp:{message.phone}"}
    contact_id: str | None = None
    found = _contact_id(session, workspace, message.phone)
    if found is not None:
        contact = get_contact(session, workspace.id, found)
        who = {"userId": contact.user_id} if contact.user_id else {"anonymousId": contact.id}
        contact_id = contact.id
    answered = (
        find_sent(session, workspace.id, message.context_wamid) if message.context_wamid else None
    )
    if answered is not None:  # it quotes (or taps a button of) a message of ours
        advance(answered, "replied", message.at)
        properties.update(message_id=answered.id, template=answered.template)
        if answered.run_id:
            properties["run_id"] = answered.run_id
    traits: dict[str, Any] = {"phone": message.phone}
    calls = [
        {
            "type": "track",
            "event": MESSAGE_REPLIED,
            **who,
            "messageId": f"whatsapp-{message.wamid}",  # Meta retries a notification: once only
            "timestamp": message.at.isoformat(),
            "properties": properties,
            "context": {"traits": traits},
        }
    ]
    score = nps_score(message.payload)
    if score is not None:
        answer = {"kind": "nps", "score": score, "channel": "whatsapp"}
        answer |= {k: properties[k] for k in ("message_id", "template") if k in properties}
        calls.append(
            {
                "type": "track",
                "event": SURVEY_ANSWERED,
                **who,
                "messageId": f"whatsapp-nps-{message.wamid}",
                "timestamp": message.at.isoformat(),
                "properties": answer,
            }
        )
    chosen = nps_range(message.payload)
    if chosen is not None and contact_id is not None:
        # Meta: 3 reply buttons, 10 list rows: the exact score is asked inside the range,
        # in the 24-hour window this tap opened (docs/channels.md, "NPS in two taps")
        enqueue(
            session,
            workspace_id=workspace.id,
            contact_id=contact_id,
            kind="send",
            channel="whatsapp",
            idempotency_key=f"whatsapp-nps:{message.wamid}",
            payload={
                "template": NPS_FOLLOW_UP.format(low=chosen[0], high=chosen[1]),
                "purpose": "transactional",
            },
            now=message.at,  # due when she tapped, as the events are timed
        )
    return calls, answered.id if answered is not None else None
