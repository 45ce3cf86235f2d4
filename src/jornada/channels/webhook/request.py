"""What a flow's webhook step POSTs: its ``body`` rendered for the contact, with the ids around it.

Every string of the step's ``body`` (at any depth) is a template rendered with
the same variables as a message (``contact``, ``trigger``, ``coupon``,
``shop``); other values go as written. The request's JSON is::

    {"id": "<run id>:<seq>", "type": "flow.webhook", "workspace_id": …, "contact_id": …,
     "flow": …, "run_id": …, "step_id": …, "trigger": {<the trigger event's properties>},
     "data": {<the rendered body>}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from jornada.channels.templates import Template, render
from jornada.errors import InvalidInput
from jornada.outbox import OutboxItem

MAX_URL = 320  # characters: the URL is kept as the message's address


def check_webhook_url(url: Any) -> str:
    """An ``http(s)://host…`` URL of at most :data:`MAX_URL` characters, else InvalidInput."""
    text = str(url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"webhook url must be http(s)://…, not {text!r}", field="webhook.url")
    if len(text) > MAX_URL:
        raise InvalidInput(f"webhook url is over {MAX_URL} characters", field="webhook.url")
    return text


def _rendered(
    value: Any, template_id: str, variables: Mapping[str, Any], locale: str, timezone: str
) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        template = Template(id=template_id, channel="webhook", body=value)
        return render(template, variables, locale=locale, timezone=timezone).body
    if isinstance(value, Mapping):
        return {
            str(k): _rendered(v, template_id, variables, locale, timezone) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rendered(v, template_id, variables, locale, timezone) for v in value]
    return value


def webhook_request(
    item: OutboxItem,
    variables: Mapping[str, Any],
    *,
    locale: str = "pt_BR",
    timezone: str = "America/Sao_Paulo",
) -> tuple[str, str]:
    """``(url, JSON body)`` for a webhook outbox item; raises InvalidInput or TemplateError."""
    payload = item.payload
    url = check_webhook_url(payload.get("url"))
    template_id = f"webhook:{payload.get('flow') or 'flow'}:{item.step_id or 'step'}"
    body = {
        "id": item.idempotency_key,
        "type": "flow.webhook",
        "workspace_id": item.workspace_id,
        "contact_id": item.contact_id,
        "flow": payload.get("flow"),
        "run_id": item.run_id,
        "step_id": item.step_id,
        "trigger": payload.get("trigger") or {},
        "data": _rendered(payload.get("body") or {}, template_id, variables, locale, timezone),
    }
    return url, orjson.dumps(body).decode()
