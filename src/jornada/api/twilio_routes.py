"""Twilio's callbacks, per workspace: ``/webhooks/twilio/{workspace_id}/status`` and ``…/sms``.

Every request must carry ``X-Twilio-Signature`` computed over the URL Twilio
was given, which is ``JORNADA_PUBLIC_URL`` + the path (so Jornada may sit behind
a proxy or tunnel), with the workspace's Auth Token; a bad or missing one is a
401 and nothing is stored. Statuses move the message or call they name. An
inbound SMS is a keyword (STOP/SAIR/PARAR/CANCELAR…, START/VOLTAR…, HELP/AJUDA)
or a reply: ``Message Replied`` through ingestion, which stops the flows that
end on a reply. Every inbound SMS, keywords included, then becomes a message of
the contact's SMS conversation in the inbox. The SMS endpoint answers TwiML.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from jornada.api.channels_routes import keys_of
from jornada.api.context import AppContext, get_context
from jornada.channels.providers import get_provider
from jornada.channels.statuses import advance
from jornada.channels.twilio.config import e164
from jornada.channels.twilio.webhook import (
    EMPTY_TWIML,
    Params,
    apply_status,
    form_params,
    help_text,
    keyword,
    last_sms_to,
    lift_stop,
    parse_status,
    reply_twiml,
    stop_phone,
    valid_signature,
)
from jornada.contacts import Contact, get_contact
from jornada.errors import InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from jornada.events.canonical import MESSAGE_REPLIED, UNSUBSCRIBED
from jornada.inbox import readable, record_inbound
from jornada.ingest import accept_messages
from jornada.outbox import enqueue
from jornada.workspaces import Workspace, WorkspaceRef

router = APIRouter(tags=["webhooks"])
TWIML = "text/xml"
MAX_BODY = 64 * 1024  # Twilio's callbacks are a few hundred bytes; an SMS body at most 1,600 chars


async def _params(request: Request) -> dict[str, list[str]]:
    """The form Twilio posted; a body far larger than any Twilio sends is refused."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(
            f"body is {len(body):,} bytes; the limit is {MAX_BODY:,}", field="body", limit=MAX_BODY
        )
    return form_params(body)


@dataclass(frozen=True)
class _Shop:
    workspace: WorkspaceRef
    url: str | None
    tokens: tuple[str, ...]  # the Auth Tokens a callback may be signed with


def _shop(context: AppContext, workspace_id: str, channels: tuple[str, ...]) -> _Shop:
    """The workspace and the Auth Tokens of its Twilio ``channels``; 404 when none uses Twilio."""
    with context.database.read() as session:
        workspace = session.get(Workspace, workspace_id)
        tokens: list[str] = []
        if workspace is not None:
            for channel in channels:
                config = get_provider(session, workspace_id, channel, keys=keys_of(context))
                token = config.secrets.get("auth_token") if config is not None else None
                if config is not None and config.provider == "twilio" and token:
                    tokens.append(token)
        if workspace is None or not tokens:
            raise NotFound(
                f"no Twilio provider for {' or '.join(channels)} here", field="workspace_id"
            )
        return _Shop(WorkspaceRef.of(workspace), workspace.url, tuple(dict.fromkeys(tokens)))


def _signed(context: AppContext, request: Request, shop: _Shop, params: Params) -> None:
    """Check ``X-Twilio-Signature`` against the URL Twilio was given (public URL + path)."""
    url = context.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += f"?{request.url.query}"
    header = request.headers.get("x-twilio-signature")
    if any(valid_signature(token, url, params, header) for token in shop.tokens):
        return
    if request.headers.get("x-twilio-webhooks-signature-settings"):
        raise Unauthorized(
            "signed with a Webhook Rule's SharedKey (X-Twilio-Webhooks-Signature-Settings); "
            "Jornada checks Auth Token signatures only: remove the rule for this URL",
            field="X-Twilio-Signature",
        )
    raise Unauthorized(f"bad or missing X-Twilio-Signature for {url}", field="X-Twilio-Signature")


@router.post("/webhooks/twilio/{workspace_id}/status")
async def status_callback(request: Request, workspace_id: str) -> dict[str, int]:
    """A message's or a call's new status (``MessageStatus`` / ``CallStatus``, ``ErrorCode``)."""
    context = get_context(request)
    params = await _params(request)

    def run() -> dict[str, int]:
        shop = _shop(context, workspace_id, ("sms", "voice"))
        _signed(context, request, shop, params)
        update = parse_status(params, context.clock.now())
        if update is None:
            raise InvalidInput(
                "a status callback names MessageSid and MessageStatus, or CallSid and CallStatus",
                field="MessageStatus",
            )
        ours = request.query_params.get("m", "")  # the message id the callback URL carries
        with context.database.write() as session:
            found = apply_status(
                session, shop.workspace.id, update, message_id=int(ours) if ours.isdigit() else None
            )
        return {"statuses": int(found is not None)}

    return await run_in_threadpool(run)


@router.post("/webhooks/twilio/{workspace_id}/sms")
async def inbound_sms(request: Request, workspace_id: str) -> Response:
    """An SMS to the workspace's number: a keyword, or a reply; answered with TwiML."""
    context = get_context(request)
    params = await _params(request)

    def run() -> str:
        shop = _shop(context, workspace_id, ("sms",))
        _signed(context, request, shop, params)
        sender = (params.get("From") or [""])[0]
        sid = (params.get("MessageSid") or params.get("SmsSid") or [""])[0].strip()
        if not sid:
            raise InvalidInput("an inbound SMS has a MessageSid", field="MessageSid")
        phone = e164(sender, "From")
        text = (params.get("Body") or [""])[0]
        media = (params.get("NumMedia") or ["0"])[0]
        now = context.clock.now()
        kind = "mms" if media not in ("", "0") else "text"
        inbound = _Inbound(sid, phone, text, kind, now, _media(params))
        said = keyword(text, (params.get("OptOutType") or [""])[0])
        answered: int | None = None
        if said == "stop":
            _stop(context, shop, inbound)
        elif said == "start":
            _start(context, shop, inbound)
        elif said == "help":
            _help(context, shop, inbound)
        else:
            answered = _reply(context, shop, inbound)
        _to_inbox(context, shop, inbound, said, answered)  # the agent sees a STOP too
        if said == "help":
            return reply_twiml(help_text(shop.workspace.name, shop.url))
        return EMPTY_TWIML

    return Response(await run_in_threadpool(run), media_type=TWIML)


@dataclass(frozen=True)
class _Inbound:
    sid: str
    phone: str  # E.164
    text: str
    type: str  # text | mms
    at: datetime
    media: tuple[dict[str, str], ...] = ()  # an MMS's MediaUrl<n> and MediaContentType<n>


def _media(params: Params) -> tuple[dict[str, str], ...]:
    """The media of an MMS, as Twilio numbers them (``MediaUrl0``…, at most 10)."""
    found = []
    for index in range(10):
        url = (params.get(f"MediaUrl{index}") or [""])[0]
        if url:
            kind = (params.get(f"MediaContentType{index}") or [""])[0]
            found.append({"url": url, "content_type": kind})
    return tuple(found)


def _to_inbox(
    context: AppContext, shop: _Shop, inbound: _Inbound, said: str | None, answered: int | None
) -> None:
    """The SMS in the contact's SMS conversation (once per MessageSid)."""
    payload: dict[str, Any] = {"type": inbound.type}
    if said is not None:
        payload["keyword"] = said
    if inbound.media:
        payload["media"] = list(inbound.media)
    if answered is not None:
        payload["in_reply_to"] = answered
    with context.database.write() as session:
        contact = _contact_with(session, shop.workspace, inbound.phone)
        if contact is None:  # ingestion refused the phone: there is no one to hold it
            return
        record_inbound(
            session,
            shop.workspace.id,
            contact.id,
            "sms",
            readable(inbound.type, inbound.text),
            payload,
            inbound.sid,
            inbound.at,
        )


def _contact_with(session: Session, workspace: WorkspaceRef, phone: str) -> Contact | None:
    """The contact with ``phone`` (one not merged away first), if any."""
    found = session.scalar(
        select(Contact.id)
        .where(Contact.workspace_id == workspace.id, Contact.phone == phone)
        .order_by(Contact.merged_into_id.is_not(None), Contact.id)
        .limit(1)
    )
    return get_contact(session, workspace.id, found) if found is not None else None


def _who(session: Session, workspace: WorkspaceRef, phone: str) -> dict[str, Any]:
    """How ingestion names the contact with ``phone``; a new one (``sms:+55…``) if none has it."""
    contact = _contact_with(session, workspace, phone)
    if contact is None:
        return {"anonymousId": f"sms:{phone}"}
    return {"userId": contact.user_id} if contact.user_id else {"anonymousId": contact.id}


def _call(kind: str, who: dict[str, Any], inbound: _Inbound, **parts: Any) -> dict[str, Any]:
    """A Segment call for ``inbound``, deduplicated by its MessageSid (Twilio may retry)."""
    return {
        "type": kind,
        **who,
        "messageId": f"twilio-{inbound.sid}",
        "timestamp": inbound.at.isoformat(),
        **parts,
    }


def _stop(context: AppContext, shop: _Shop, inbound: _Inbound) -> None:
    """Listed for SMS and voice (``stop``), and the SMS marketing consent withdrawn."""
    with context.database.write() as session:
        stop_phone(session, shop.workspace.id, inbound.phone, inbound.at)
        who = _who(session, shop.workspace, inbound.phone)
    call = _call(
        "track",
        who,
        inbound,
        event=UNSUBSCRIBED,
        properties={"channel": "sms", "method": "keyword", "text": inbound.text},
        context={
            "traits": {"phone": inbound.phone, "consent": {"sms_marketing": False}},
            "consent_source": "sms STOP",
        },
    )
    accept_messages(context.database, shop.workspace, [call], received_at=inbound.at)


def _start(context: AppContext, shop: _Shop, inbound: _Inbound) -> None:
    """Off the list (a ``stop`` entry only) and the SMS marketing consent granted again."""
    with context.database.write() as session:
        lift_stop(session, shop.workspace.id, inbound.phone)
        who = _who(session, shop.workspace, inbound.phone)
    call = _call(
        "identify",
        who,
        inbound,
        traits={"phone": inbound.phone, "consent": {"sms_marketing": True}},
        context={"consent_source": "sms START"},
    )
    accept_messages(context.database, shop.workspace, [call], received_at=inbound.at)


def _help(context: AppContext, shop: _Shop, inbound: _Inbound) -> None:
    """A team alert (a ``notify`` outbox item, as a flow's ``notify`` step makes) for the contact."""
    with context.database.read() as session:
        known = _contact_with(session, shop.workspace, inbound.phone) is not None
    if not known:  # a stranger: made a contact, so the alert has someone to point at
        call = _call("identify", {"anonymousId": f"sms:{inbound.phone}"}, inbound)
        call["traits"] = {"phone": inbound.phone}
        accept_messages(context.database, shop.workspace, [call], received_at=inbound.at)
    with context.database.write() as session:
        contact = _contact_with(session, shop.workspace, inbound.phone)
        if contact is None:  # ingestion refused the phone: say so rather than drop the alert
            raise InvalidInput(f"no contact could be made for {inbound.phone}", field="From")
        enqueue(
            session,
            workspace_id=shop.workspace.id,
            contact_id=contact.id,
            kind="notify",
            idempotency_key=f"twilio-help:{inbound.sid}",
            payload={
                "message": f"SMS de {inbound.phone} pediu ajuda: {inbound.text.strip()}",
                "to": "team",
                "channel": "sms",
                "twilio_message_sid": inbound.sid,
            },
            now=inbound.at,
        )


def _reply(context: AppContext, shop: _Shop, inbound: _Inbound) -> int | None:
    """``Message Replied`` (channel sms); our latest SMS to the phone becomes ``replied``
    (its id is returned)."""
    properties: dict[str, Any] = {
        "channel": "sms",
        "text": inbound.text,
        "type": inbound.type,
        "twilio_message_sid": inbound.sid,
    }
    answered_id: int | None = None
    with context.database.write() as session:
        who = _who(session, shop.workspace, inbound.phone)
        answered = last_sms_to(session, shop.workspace.id, inbound.phone, inbound.at)
        if answered is not None:
            answered_id = answered.id
            advance(answered, "replied", inbound.at)
            properties.update(message_id=answered.id, template=answered.template)
            if answered.run_id:
                properties["run_id"] = answered.run_id
    call = _call(
        "track",
        who,
        inbound,
        event=MESSAGE_REPLIED,
        properties=properties,
        context={"traits": {"phone": inbound.phone}},
    )
    accept_messages(context.database, shop.workspace, [call], received_at=inbound.at)
    return answered_id
