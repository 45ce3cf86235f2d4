"""Send through the WhatsApp Business Cloud API, every httpx failure mapped to ours.

``POST {base_url}/{api_version}/{phone_number_id}/messages`` with the access
token as a Bearer token. A message rendered from an approved library template
goes as that template (registered with Meta under the template's id, ``-`` as
``_``): each ``{{ … }}`` of the Jinja source is one body parameter, in order,
and its value is read back from the rendered text. Anything else (a workspace's
own wording, a template with ``{% … %}`` blocks) goes as free-form text, which
the policy gate only lets through inside the 24-hour window.
"""

from __future__ import annotations

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
)
from jornada.channels.whatsapp.config import DEFAULT_API_VERSION, DEFAULT_BASE_URL, DEFAULT_LANGUAGE

#: Graph API error codes that mean the workspace's credentials or permissions are wrong: no
#: message is at fault (0 AuthException, 3 capability, 10 permission denied, 190 token expired).
CREDENTIAL_CODES = frozenset({0, 3, 10, 190, *range(200, 300)})
#: Throttling codes: the message is fine, try it again later (4 app calls, 80007 account,
#: 130429 throughput, 131056 too many to the same recipient).
THROTTLE_CODES = frozenset({4, 80007, 130429, 131056})
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


def request_body(message: Outbound, language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """The JSON the Cloud API takes for ``message``: a template message, else free-form text."""
    to = message.to.strip().lstrip("+")
    parameters = template_parameters(message.template, message.body)
    if parameters is None:
        return {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": False, "body": message.body},
        }
    template: dict[str, Any] = {
        "name": meta_template_name(message.template),
        "language": {"code": language},
    }
    if parameters:
        template["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}
        ]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template,
    }


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
    said = f"HTTP {response.status_code}"
    if code is not None:
        said += f" code {code}"
    said += f": {text}"
    if details:
        said += f" ({details})"
    return code, said


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
        self._client = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {secrets['access_token']}"},
        )

    def send(self, message: Outbound, now: datetime) -> str:
        """Send ``message``; the ``wamid`` the API gave it."""
        if not message.to.strip():
            raise PermanentDeliveryError("the message has no phone number")
        with map_http_errors("cannot reach the WhatsApp Cloud API"):
            response = self._client.post(self.url, json=request_body(message, self.language))
        raise_for_answer(response)
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
