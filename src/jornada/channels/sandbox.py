"""Gate, render and store: the sandbox channel, and the first half of a real send.

A message passes the policy gate, then is stored with its status and shown,
never dropped; a suppressed or deferred one says why. Without a provider for
its channel (the sandbox) it is stored as ``sent`` and goes nowhere; with one
it is stored ``queued`` and ``channels.delivery`` sends it after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from jornada.channels.catalog import TemplateBook, template_for
from jornada.channels.history import SendHistory, recipient
from jornada.channels.policy import DEFAULT_SENDING, NO_HISTORY, Allow, Defer, address, gate
from jornada.channels.templates import Template, TemplateError, render
from jornada.channels.webhook.request import webhook_request
from jornada.contacts import Contact, recommended_for
from jornada.contacts.queries import contact_view
from jornada.errors import JornadaError
from jornada.outbox import OutboxItem
from jornada.workspaces import Workspace


def _address(channel: str, contact: Contact) -> str | None:
    return address(channel, recipient(contact))


def record_effect(
    item: OutboxItem, contact: Contact, now: datetime, out: list[dict[str, Any]]
) -> None:
    """Coupons, webhooks and team notifications, recorded as the sandbox's messages."""
    _record(item, contact, now, _body(item), out)
    done(item, now)


def call_webhook(
    item: OutboxItem,
    contact: Contact,
    shop: Workspace,
    now: datetime,
    out: list[dict[str, Any]],
    providers: Mapping[tuple[str, str], str] | None = None,
) -> None:
    """A flow's webhook step: its request rendered and stored as a message to its URL.

    Queued for delivery (signed POST) when the workspace set the ``webhook``
    channel; else the sandbox's, stored and not sent. A bad URL or body fails the item.
    """
    try:
        url, body = webhook_request(
            item,
            variables(item, contact, shop),
            locale=contact.locale or "pt_BR",
            timezone=contact.timezone,
        )
    except JornadaError as exc:  # a URL that is not http(s), a template that does not render
        item.status, item.reason, item.processed_at = "failed", exc.message[:200], now
        return
    provider = (providers or {}).get((item.workspace_id, "webhook"))
    _record(item, contact, now, body, out, provider=provider, to=url)
    done(item, now)


def _body(item: OutboxItem) -> str:
    payload: dict[str, Any] = item.payload
    if item.kind == "coupon":
        return str((payload.get("coupon") or {}).get("code", ""))
    if item.kind == "webhook":
        return f"POST {payload.get('url')}"
    return str(payload.get("message", item.kind))


def uses_recommended(template: Template) -> bool:
    """Whether any part of ``template`` names ``recommended`` (only then is it computed)."""
    parts = [template.subject, template.body, template.text]
    if template.whatsapp is not None:  # a product list of recommendations
        parts += [source for _, source in template.whatsapp.sources()]
    return any("recommended" in part for part in parts if part)


def variables(
    item: OutboxItem,
    contact: Contact,
    shop: Workspace,
    *,
    session: Session | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What a template may use: the contact, the triggering event, a coupon, the shop.

    With a ``session`` and ``now``, also ``recommended``: up to three products
    often bought with the trigger's products (else the last order's, else the
    last product viewed), each with product_id, name and, when known, price,
    url and image_url; an empty list when there is nothing to suggest.
    """
    payload = item.payload
    trigger = payload.get("trigger") or {}
    recommended = (
        recommended_for(session, contact, trigger, now=now)
        if session is not None and now is not None and isinstance(trigger, dict)
        else []
    )
    return {
        "contact": orjson.loads(orjson.dumps(contact_view(contact), default=str)),
        "trigger": trigger,
        "coupon": payload.get("coupon") or {},
        "shop": {"name": shop.name, "url": (shop.url or "").rstrip("/")},
        "recommended": recommended,
    }


def send(
    session: Session,
    item: OutboxItem,
    contact: Contact,
    shop: Workspace,
    now: datetime,
    out: list[dict[str, Any]],
    templates: TemplateBook | None = None,
    history: SendHistory | None = None,
    providers: Mapping[tuple[str, str], str] | None = None,
) -> None:
    """Gate, render and store one message; a refusal or a broken template is recorded, never lost.

    ``templates``: the batch's templates, read once (else each send looks its template up).
    ``history``: what the gate knows of the batch's contacts (suppressions, messages
    already sent, WhatsApp replies, flows' quiet hours, the workspace's gate settings);
    without it the gate sees no past and uses the default settings.
    ``providers``: ``(workspace, channel) → provider`` configured for the batch's
    workspaces; a message on such a channel is queued for delivery instead of kept here.
    """
    channel = item.channel or "email"
    template_id = str(item.payload.get("template"))
    template = (
        templates.get(item.workspace_id, template_id)
        if templates is not None
        else template_for(session, item.workspace_id, template_id)
    )
    settings = history.settings(item) if history is not None else DEFAULT_SENDING
    who = history.recipient(contact) if history is not None else recipient(contact)
    verdict = gate(
        channel,
        str(item.payload.get("purpose", "marketing")),
        who,
        now,
        history.quiet(item) if history is not None else settings.quiet,
        template=template_id,
        approved=template is not None and template.approved,
        history=history.of(item) if history is not None else NO_HISTORY,
        caps=settings.caps,
        smart_window=settings.smart_window,
    )
    if isinstance(verdict, Defer):
        item.due_at = verdict.until
        item.reason = verdict.reason
        return
    if not isinstance(verdict, Allow):
        item.status, item.reason, item.processed_at = "suppressed", verdict.reason[:200], now
        return
    if template is None:
        item.status, item.reason, item.processed_at = "failed", f"no template {template_id!r}", now
        return
    try:
        rendered = render(
            template,
            variables(
                item,
                contact,
                shop,
                # products are looked up only for a template that shows them
                session=session if uses_recommended(template) else None,
                now=now,
            ),
            locale=contact.locale or "pt_BR",
            timezone=contact.timezone,
        )
    except TemplateError as exc:
        item.status, item.reason, item.processed_at = "failed", exc.message[:200], now
        return
    _record(
        item,
        contact,
        now,
        rendered.body,
        out,
        subject=rendered.subject,
        # WhatsApp's buttons, list, audio or products ride in the text column, as JSON
        text=(
            rendered.text if rendered.whatsapp is None else orjson.dumps(rendered.whatsapp).decode()
        ),
        provider=(providers or {}).get((item.workspace_id, channel)),
        to=address(item.channel or item.kind, who),  # the stored channel, as _record names it
    )
    if history is not None:
        history.record(item, template_id, now)
    if rendered.missing:
        item.reason = f"fell back on {', '.join(rendered.missing)}"[:200]
    done(item, now)


def _record(
    item: OutboxItem,
    contact: Contact,
    now: datetime,
    body: str,
    out: list[dict[str, Any]],
    *,
    subject: str | None = None,
    text: str | None = None,
    provider: str | None = None,
    to: str | None = None,
) -> None:
    """Add the message row to ``out``; the caller writes them all at once.

    With a ``provider`` the row is ``queued`` for delivery now; else the sandbox's ``sent``.
    """
    channel = item.channel or item.kind
    out.append(
        {
            "workspace_id": item.workspace_id,
            "outbox_id": item.id,
            "contact_id": contact.id,
            "run_id": item.run_id,
            "channel": channel,
            "template": str(item.payload.get("template", item.kind)),
            # a send without a purpose is judged as marketing by the gate: stored the same way
            "purpose": str(
                item.payload.get("purpose", "marketing" if item.kind == "send" else "transactional")
            ),
            "provider": provider or "sandbox",
            "to_address": to if to is not None else _address(channel, contact),
            "subject": subject,
            "body": body,
            "text_body": text,
            "status": "queued" if provider else "sent",
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now if provider else None,
            "sent_at": None if provider else now,
        }
    )


def done(item: OutboxItem, now: datetime) -> None:
    item.status, item.processed_at = "done", now
