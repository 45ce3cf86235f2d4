"""A local WhatsApp Cloud API that follows the documented contract, for the delivery tests.

It answers ``POST /{version}/{phone_number_id}/messages`` as Meta does: the
Bearer token and the phone number id must be the configured ones, the body a
``messaging_product: whatsapp`` message of type ``template``, ``text``,
``audio`` or ``interactive`` (``button``, ``list``, ``product``,
``product_list``) within Meta's documented limits (3 reply buttons with titles
of 20 characters and unique ids, 10 list rows in all, 30 products…); it returns
``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages": [{"id":
"wamid…"}]}``. A message outside those limits gets Meta's ``131009`` error with
the details. A number in ``window_closed`` gets ``131047`` for anything but a
template, as Meta answers outside the 24-hour window. Told to, it answers a 5xx
or a Graph API error object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.loopback import Loopback, QuietHandler


@dataclass
class Request:
    """One accepted send: the path, headers and JSON body as received."""

    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class CloudApi(Loopback):
    """The fake API; ``fail_with`` makes the next sends answer (status, error object or None)."""

    token: str = "EAAG-test-token"
    phone_number_id: str = "109876543210"
    version: str = "v21.0"
    received: list[Request] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any] | None] | None = None
    window_closed: set[str] = field(default_factory=set)  # numbers (digits) past 24 h
    refused: list[dict[str, Any]] = field(default_factory=list)  # bodies answered with an error

    def start(self) -> CloudApi:
        api = self

        class Handler(QuietHandler):
            def _answer(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body is not None else b"oops"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: int, message: str) -> None:
                self._answer(
                    status,
                    {
                        "error": {
                            "message": message,
                            "type": "OAuthException",
                            "code": code,
                            "fbtrace_id": "AbCdEf",
                        }
                    },
                )

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != f"/{api.version}/{api.phone_number_id}/messages":
                    self._error(400, 100, "Unsupported post request")
                    return
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    self._error(401, 190, "Error validating access token")
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._error(400, 100, "Invalid JSON")
                    return
                kind = body.get("type") if isinstance(body, dict) else None
                well_formed = (
                    isinstance(body, dict)
                    and body.get("messaging_product") == "whatsapp"
                    and str(body.get("to", "")).isdigit()
                    and kind in CHECKS
                    and isinstance(body.get(kind), dict)
                )
                if not well_formed:
                    api.refused.append(body)
                    self._error(400, 100, "(#100) Invalid parameter")
                    return
                problem = CHECKS[kind](body[kind])
                if problem is not None:
                    api.refused.append(body)
                    self._answer(
                        400,
                        {
                            "error": {
                                "message": "(#131009) Parameter value is not valid",
                                "type": "OAuthException",
                                "code": 131009,
                                "error_data": {"messaging_product": "whatsapp", "details": problem},
                                "fbtrace_id": "AbCdEf",
                            }
                        },
                    )
                    return
                if kind != "template" and body["to"] in api.window_closed:
                    api.refused.append(body)
                    self._answer(
                        400,
                        {
                            "error": {
                                "message": "(#131047) Re-engagement message",
                                "type": "OAuthException",
                                "code": 131047,
                                "error_data": {
                                    "messaging_product": "whatsapp",
                                    "details": "Message failed to send because more than 24 hours"
                                    " have passed since the customer last replied to this number.",
                                },
                                "fbtrace_id": "AbCdEf",
                            }
                        },
                    )
                    return
                if api.fail_with is not None:
                    status, error = api.fail_with
                    self._answer(status, error)
                    return
                api.received.append(Request(self.path, self.headers.get("Authorization"), body))
                self._answer(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                        "messages": [{"id": f"wamid.TEST{len(api.received):06d}"}],
                    },
                )

        self.serve(Handler)
        return self


# -- Meta's limits, as the Cloud API checks them ---------------------------------------------
def _text(value: Any, what: str, limit: int) -> str | None:
    if not isinstance(value, str) or not value:
        return f"{what} is required"
    if len(value) > limit:
        return f"{what} length invalid. Min length: 1, Max length: {limit}"
    return None


def _check_text(part: dict[str, Any]) -> str | None:
    return None if isinstance(part.get("body"), str) and part["body"] else "text.body is required"


def _check_template(part: dict[str, Any]) -> str | None:
    if not isinstance(part.get("name"), str) or not isinstance(
        (part.get("language") or {}).get("code"), str
    ):
        return "template name and language.code are required"
    for component in part.get("components") or []:
        if component.get("type") == "button":
            index = component.get("index")
            if component.get("sub_type") != "quick_reply" or index not in {
                str(i) for i in range(10)
            }:
                return "button component needs sub_type quick_reply and an index 0-9"
            (parameter,) = component.get("parameters") or [{}]
            if parameter.get("type") != "payload" or not parameter.get("payload"):
                return "quick reply parameter needs a payload"
        elif component.get("type") != "body":
            return f"unexpected component {component.get('type')!r}"
    return None


def _check_audio(part: dict[str, Any]) -> str | None:
    given = [k for k in ("id", "link") if part.get(k)]
    if len(given) != 1 or set(part) - {"id", "link"}:
        return "audio takes exactly one of id or link"
    if "link" in part and not str(part["link"]).startswith(("http://", "https://")):
        return "audio link must be an http(s) URL"
    return None


def _check_frame(part: dict[str, Any], body_limit: int, body_required: bool) -> str | None:
    header = part.get("header")
    if header is not None and (
        header.get("type") != "text" or _text(header.get("text"), "Header text", 60)
    ):
        return "Header text length invalid. Min length: 1, Max length: 60"
    body = part.get("body")
    if body is None:
        if body_required:
            return "body is required"
    elif problem := _text(body.get("text"), "Body text", body_limit):
        return problem
    footer = part.get("footer")
    if footer is not None and (problem := _text(footer.get("text"), "Footer text", 60)):
        return problem
    return None


def _check_buttons(part: dict[str, Any]) -> str | None:
    if problem := _check_frame(part, 1024, body_required=True):
        return problem
    buttons = (part.get("action") or {}).get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return "buttons count invalid. Min: 1, Max: 3"
    ids, titles = set(), set()
    for button in buttons:
        reply = button.get("reply") or {}
        if button.get("type") != "reply":
            return "button type must be reply"
        if problem := _text(reply.get("title"), "Button title", 20):
            return problem
        if problem := _text(reply.get("id"), "Button id", 256):
            return problem
        if reply["id"] in ids or reply["title"] in titles:
            return "Button ids and titles must be unique"
        ids.add(reply["id"])
        titles.add(reply["title"])
    return None


def _check_list(part: dict[str, Any]) -> str | None:
    if problem := _check_frame(part, 4096, body_required=True):
        return problem
    action = part.get("action") or {}
    if problem := _text(action.get("button"), "Button text", 20):
        return problem
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
        return "sections count invalid. Min: 1, Max: 10"
    rows = [row for section in sections for row in section.get("rows") or []]
    if not 1 <= len(rows) <= 10:
        return "Total row count exceed max allowed count: 10"
    for section in sections:
        if (len(sections) > 1 or "title" in section) and (
            problem := _text(section.get("title"), "Section title", 24)
        ):
            return problem
    for row in rows:
        if problem := (
            _text(row.get("id"), "Row id", 200) or _text(row.get("title"), "Row title", 24)
        ):
            return problem
        if "description" in row and (problem := _text(row["description"], "Row description", 72)):
            return problem
    if len({row["id"] for row in rows}) != len(rows):
        return "Row ids must be unique"
    return None


def _check_product(part: dict[str, Any]) -> str | None:
    if "header" in part:
        return "a single-product message has no header"
    if problem := _check_frame(part, 1024, body_required=False):
        return problem
    action = part.get("action") or {}
    if not action.get("catalog_id") or not action.get("product_retailer_id"):
        return "catalog_id and product_retailer_id are required"
    return None


def _check_product_list(part: dict[str, Any]) -> str | None:
    if "header" not in part:
        return "header is required"
    if problem := _check_frame(part, 1024, body_required=True):
        return problem
    action = part.get("action") or {}
    sections = action.get("sections")
    if not action.get("catalog_id"):
        return "catalog_id is required"
    if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
        return "sections count invalid. Min: 1, Max: 10"
    items = [item for section in sections for item in section.get("product_items") or []]
    if not 1 <= len(items) <= 30:
        return "Total product count invalid. Min: 1, Max: 30"
    for section in sections:
        if problem := _text(section.get("title"), "Section title", 24):
            return problem
        if not section.get("product_items"):
            return "product_items is required"
    if not all(item.get("product_retailer_id") for item in items):
        return "product_retailer_id is required"
    return None


INTERACTIVE = {
    "button": _check_buttons,
    "list": _check_list,
    "product": _check_product,
    "product_list": _check_product_list,
}


def _check_interactive(part: dict[str, Any]) -> str | None:
    check = INTERACTIVE.get(str(part.get("type")))
    return check(part) if check is not None else f"interactive type {part.get('type')!r} unknown"


CHECKS = {
    "text": _check_text,
    "template": _check_template,
    "audio": _check_audio,
    "interactive": _check_interactive,
}
