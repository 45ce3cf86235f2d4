"""Send through the WhatsApp Business Cloud API, every httpx failure mapped to ours.

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with the access
token as a Bearer token. A message rendered from an approved library template
goes as that template (registered with Meta under the template's id, ``-`` as
``_``): each ``{{ … }}`` of the Jinja source is one body parameter, in order,
and its value is read back from the rendered text. Anything else (a workspace's
own wording, a template with ``{% … %}`` blocks) goes as free-form text, which
the policy gate only lets through inside the 24-hour window.

A template's WhatsApp parts (``channels/whatsapp/parts.py``), rendered at
dispatch and kept as JSON in the message's text column, change what goes:
reply buttons on an approved template are its registered quick replies (one
``button`` component per button, the id as payload); elsewhere they are an
``interactive`` ``button`` message. A list, a product, a product list and an
audio are session messages: Meta takes them only inside the 24-hour window and
answers 131047 outside it, so an approved template with one of them is sent as
its registered template when Meta answers that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any

import httpx

from jornada.channels.catalog import library_templates
from jornada.channels.email.compose import Outbound
from jornada.channels.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ProviderUnavailable,
    TransientDeliveryError,
    describe_answer,
)
from jornada.channels.whatsapp.config import DEFAULT_API_VERSION, DEFAULT_BASE_URL, DEFAULT_LANGUAGE

#: Graph API error codes that mean the workspace's credentials or permissions are wrong: no
#: message is at fault (0 AuthException, 3 capability, 10 permission denied, 190 token expired).
CREDENTIAL_CODES = frozenset({0, 3, 10, 190, *range(200, 300)})
#: Throttling codes: the message is fine, try it again later (4 app calls, 80007 account,
#: 130429 throughput, 131056 too many to the same recipient).
THROTTLE_CODES = frozenset({4, 80007, 130429, 131056})
#: "Re-engagement message": more than 24 hours since the contact last wrote; only templates go.
OUTSIDE_WINDOW = 131047
_VARIABLE = re.compile(r"\{\{.*?\}\}", re.DOTALL)


def meta_template_name(template_id: str) -> str:
    """The name a library template is registered under with Meta (lowercase, ``_``)."""
    return re.sub(r"[^a-z0-9_]", "_", template_id.lower())


@cache
def _pattern(source: str) -> re.Pattern[str] | None:
    """A regex that reads a rendering of ``source`` back into its variables, or None."""
    if "{%" in source or "{#" in source:
        return None
    pieces = _VARIABLE.split(source.strip())
    if len(pieces) == 1:
        return None  # no variables: still a template, with no parameters
    return re.compile("(.+?)".join(re.escape(p) for p in pieces), re.DOTALL)


def template_parameters(template_id: str, body: str) -> list[str] | None:
    """The body parameters of an approved library template rendered as ``body``.

    None when ``template_id`` is not an approved WhatsApp library template, or
    ``body`` is not its rendering (the workspace changed the wording): then the
    message can only go as free-form text.
    """
    template = library_templates().get(template_id)
    if template is None or template.channel != "whatsapp" or not template.approved:
        return None
    if not _VARIABLE.search(template.body):
        return [] if template.body.strip() == body.strip() else None
    pattern = _pattern(template.body)
    found = pattern.fullmatch(body.strip()) if pattern is not None else None
    return list(found.groups()) if found is not None else None


def parts_of(message: Outbound) -> dict[str, Any] | None:
    """The rendered WhatsApp parts stored with ``message`` (see ``WhatsAppParts.render``)."""
    if message.channel != "whatsapp" or not message.text:
        return None
    try:
        parts = json.loads(message.text)
    except ValueError:
        return None
    return parts if isinstance(parts, dict) and "kind" in parts else None


def _envelope(to: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": kind,
        kind: content,
    }


def _interactive(
    kind: str, body: str, parts: dict[str, Any], action: dict[str, Any]
) -> dict[str, Any]:
    """An ``interactive`` object: Meta's keys in its documented order."""
    interactive: dict[str, Any] = {"type": kind}
    if parts.get("header"):
        interactive["header"] = {"type": "text", "text": parts["header"]}
    if body.strip():
        interactive["body"] = {"text": body.strip()}
    if parts.get("footer"):
        interactive["footer"] = {"text": parts["footer"]}
    interactive["action"] = action
    return interactive


def session_message(
    to: str, body: str, parts: dict[str, Any], catalog_id: str | None = None
) -> dict[str, Any]:
    """The Cloud API JSON of a session (non-template) message with ``parts``.

    Raises :class:`PermanentDeliveryError` for a product message with no
    catalog id (neither the template's nor the provider's ``catalog_id``).
    """
    kind = parts["kind"]
    if kind == "audio":
        media = {k: parts[k] for k in ("id", "link") if parts.get(k)}
        return _envelope(to, "audio", media)
    if kind == "buttons":
        buttons = [
            {"type": "reply", "reply": {"id": b["id"], "title": b["title"]}}
            for b in parts["buttons"]
        ]
        return _envelope(
            to, "interactive", _interactive("button", body, parts, {"buttons": buttons})
        )
    if kind == "list":
        action = {"button": parts["button"], "sections": parts["sections"]}
        return _envelope(to, "interactive", _interactive("list", body, parts, action))
    catalog = parts.get("catalog_id") or catalog_id
    if not catalog:
        raise PermanentDeliveryError(
            "a product message needs a catalog id: set the template's catalog_id"
            " or the provider's --catalog-id"
        )
    if kind == "product":
        action = {"catalog_id": catalog, "product_retailer_id": parts["product_retailer_id"]}
        return _envelope(to, "interactive", _interactive("product", body, parts, action))
    sections = [
        {
            "title": s["title"],
            "product_items": [{"product_retailer_id": p} for p in s["products"]],
        }
        for s in parts["sections"]
    ]
    action = {"catalog_id": catalog, "sections": sections}
    return _envelope(to, "interactive", _interactive("product_list", body, parts, action))


def template_message(
    to: str,
    template_id: str,
    parameters: list[str],
    language: str,
    quick_replies: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A registered template: its body parameters, and each quick reply's id as its payload."""
    template: dict[str, Any] = {
        "name": meta_template_name(template_id),
        "language": {"code": language},
    }
    components: list[dict[str, Any]] = []
    if parameters:
        components.append(
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        )
    for index, button in enumerate(quick_replies or ()):
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": button["id"]}],
            }
        )
    if components:
        template["components"] = components
    return _envelope(to, "template", template)


def request_bodies(
    message: Outbound, language: str = DEFAULT_LANGUAGE, catalog_id: str | None = None
) -> list[dict[str, Any]]:
    """The JSON bodies that may carry ``message``, best first.

    The next one is tried only when Meta answers the one before with 131047
    (outside the 24-hour window): a session message, then its registered template.
    """
    to = message.to.strip().lstrip("+")
    parameters = template_parameters(message.template, message.body)
    parts = parts_of(message)
    if parameters is not None:
        if parts is not None and parts["kind"] == "buttons":
            return [template_message(to, message.template, parameters, language, parts["buttons"])]
        registered = template_message(to, message.template, parameters, language)
        if parts is None:
            return [registered]
        return [session_message(to, message.body, parts, catalog_id), registered]
    if parts is not None:
        return [session_message(to, message.body, parts, catalog_id)]
    return [_envelope(to, "text", {"preview_url": False, "body": message.body})]


def request_body(message: Outbound, language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The JSON the Cloud API takes for ``message`` first (see :func:`request_bodies`)."""
    return request_bodies(message, language)[0]


def _graph_error(response: httpx.Response) -> tuple[int | None, str]:
    """The Graph API error's code and ``(#code) message: details``, from whatever was answered."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    text = str(error.get("message") or response.reason_phrase or "no message").strip()
    details = (
        (error.get("error_data") or {}).get("details")
        if isinstance(error.get("error_data"), dict)
        else None
    )
    return code, describe_answer(response.status_code, code, text, details)


def raise_for_answer(response: httpx.Response) -> None:
    """Map a non-2xx answer to the delivery error tree (STYLE §4)."""
    if response.is_success:
        return
    code, said = _graph_error(response)
    status = response.status_code
    if status >= 500 or status in (401, 403) or code in CREDENTIAL_CODES:
        raise ProviderUnavailable(f"WhatsApp Cloud API: {said}", provider_code=code)
    if status == 429 or code in THROTTLE_CODES:
        raise TransientDeliveryError(f"WhatsApp Cloud API: {said}", provider_code=code)
    raise PermanentDeliveryError(f"WhatsApp Cloud API: {said}", provider_code=code)


@contextmanager
def map_http_errors(where: str) -> Iterator[None]:
    """Turn httpx's exceptions into ours: the API cannot be reached, no message is at fault."""
    try:
        yield
    except DeliveryError:
        raise
    except httpx.HTTPError as exc:  # connection refused or reset, timeouts, TLS, protocol
        raise ProviderUnavailable(f"{where}: {str(exc) or type(exc).__name__}") from exc


class WhatsAppCloudTransport:
    """One HTTP client (a connection pool) for one workspace's WhatsApp number."""

    def __init__(
        self,
        options: dict[str, Any],
        secrets: dict[str, Any],
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        version = str(options.get("api_version") or DEFAULT_API_VERSION)
        self.url = (
            f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{version}"
            f"/{options['phone_number_id']}/messages"
        )
        self.language = str(options.get("language") or DEFAULT_LANGUAGE)
        self.catalog_id = str(options.get("catalog_id") or "") or None
        self._client = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {secrets['access_token']}"},
        )

    def send(self, message: Outbound, now: datetime) -> str:
        """Send ``message``; the ``wamid`` the API gave it."""
        if not message.to.strip():
            raise PermanentDeliveryError("the message has no phone number")
        bodies = request_bodies(message, self.language, self.catalog_id)
        for index, body in enumerate(bodies):
            with map_http_errors("cannot reach the WhatsApp Cloud API"):
                response = self._client.post(self.url, json=body)
            try:
                raise_for_answer(response)
            except PermanentDeliveryError as exc:
                if exc.data.get("provider_code") == OUTSIDE_WINDOW and index + 1 < len(bodies):
                    continue  # the window is closed: the registered template goes instead
                raise
            break
        try:
            answer = response.json()
            wamid = str(answer["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise TransientDeliveryError(
                f"WhatsApp Cloud API: unexpected answer {response.text[:200]!r}"
            ) from exc
        return wamid

    def close(self) -> None:
        self._client.close()
