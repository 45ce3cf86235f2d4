"""A local Twilio REST API that follows the documented contract, and Twilio's signed callbacks.

It answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` and
``…/Calls.json`` as Twilio does: HTTP Basic auth must be the account SID and
Auth Token (else 401, code 20003), the body form-encoded with ``To`` in E.164
and, for a message, a ``Body`` and ``From`` or ``MessagingServiceSid``; for a
call, ``From`` and a ``Twiml`` document that parses as XML with a
``<Response>`` root (else 400 with Twilio's error object ``{code, message,
more_info, status}``). Accepted: 201 with the new resource (``sid`` ``SM…`` /
``CA…``, ``status`` ``queued``, or ``accepted`` through a messaging service).
Told to, it answers any status and error object instead.

It also plays Twilio's side of the callbacks: status callbacks to the
``StatusCallback`` a request carried and inbound SMS, signed with
``X-Twilio-Signature`` by the ``twilio`` package's own ``RequestValidator``
over the URL Twilio was given, so the product's check is tested against an
independent implementation.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from tests.support.loopback import Loopback, QuietHandler

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 8 + "0123456789abcdef" + "e" * 8
VERSION = "2010-04-01"


class Poster(Protocol):
    """Where Jornada listens: an ``httpx.Client`` with a base URL, or an in-process ASGI client."""

    def post(self, url: str, **kwargs: Any) -> httpx.Response: ...


@dataclass
class Request:
    """One accepted request: which resource, the Basic auth user and password, the form."""

    resource: str  # Messages | Calls
    user: str
    password: str
    form: dict[str, str]
    sid: str


@dataclass
class TwilioApi(Loopback):
    """The fake API; ``fail_with`` makes the next requests answer (status, error object or None)."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    received: list[Request] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any] | None] | None = None
    #: called with each accepted request before it is answered (Twilio may call back that soon)
    on_request: Callable[[Request], None] | None = None

    def start(self) -> TwilioApi:
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
                        "code": code,
                        "message": message,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status,
                    },
                )

            def _credentials(self) -> tuple[str, str] | None:
                header = self.headers.get("Authorization") or ""
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user, password

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                prefix = f"/{VERSION}/Accounts/{api.account_sid}/"
                resource = self.path.removeprefix(prefix).removesuffix(".json")
                if not self.path.startswith(prefix) or resource not in ("Messages", "Calls"):
                    self._error(404, 20404, f"The requested resource {self.path} was not found")
                    return
                credentials = self._credentials()
                if credentials != (api.account_sid, api.auth_token):
                    self._error(401, 20003, "Authenticate")
                    return
                if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    self._error(400, 20001, "Content-Type must be form-encoded")
                    return
                form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
                problem = _problem(resource, form)
                if problem is not None:
                    self._error(400, *problem)
                    return
                if api.fail_with is not None:
                    self._answer(*api.fail_with)
                    return
                prefix_sid = "SM" if resource == "Messages" else "CA"
                sid = f"{prefix_sid}{len(api.received) + 1:032x}"
                api.received.append(Request(resource, *credentials, form, sid))
                if api.on_request is not None:
                    api.on_request(api.received[-1])
                status = "accepted" if form.get("MessagingServiceSid") else "queued"
                self._answer(
                    201,
                    {
                        "sid": sid,
                        "account_sid": api.account_sid,
                        "to": form["To"],
                        "from": form.get("From"),
                        "messaging_service_sid": form.get("MessagingServiceSid"),
                        "body": form.get("Body"),
                        "status": status,
                        "direction": "outbound-api",
                        "api_version": VERSION,
                        "error_code": None,
                        "error_message": None,
                        "uri": f"{prefix}{resource}/{sid}.json",
                    },
                )

        self.serve(Handler)
        return self

    # -- Twilio's side of the callbacks ----------------------------------------------------
    def sign(self, url: str, params: dict[str, str], token: str | None = None) -> str:
        """``X-Twilio-Signature`` of a POST of ``params`` to ``url``, by Twilio's own library."""
        return str(RequestValidator(token or self.auth_token).compute_signature(url, params))

    def post_signed(
        self,
        client: Poster,
        url: str,
        params: dict[str, str],
        *,
        token: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST ``params`` to the path of ``url`` through ``client`` (where Jornada listens),
        signed over ``url`` (the URL Twilio was given), as Twilio does behind a tunnel."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature or self.sign(url, params, token),
        }
        return client.post(path, data=params, headers=headers)

    def status_params(self, request: Request, status: str, **extra: str) -> dict[str, str]:
        """What Twilio posts to the request's ``StatusCallback`` when its status changes."""
        common = {
            "AccountSid": self.account_sid,
            "To": request.form["To"],
            "From": request.form.get("From", "+551130000000"),
            "ApiVersion": VERSION,
        }
        if request.resource == "Messages":
            ids = {"MessageSid": request.sid, "SmsSid": request.sid}
            return {**common, **ids, "MessageStatus": status, "SmsStatus": status, **extra}
        return {
            **common,
            "CallSid": request.sid,
            "CallStatus": status,
            "Direction": "outbound-api",
            **extra,
        }

    def send_status(
        self, client: Poster, request: Request, status: str, **extra: str
    ) -> httpx.Response:
        """A signed status callback for ``request`` (``ErrorCode`` & co. in ``extra``)."""
        url = request.form["StatusCallback"]
        return self.post_signed(client, url, self.status_params(request, status, **extra))

    def inbound_params(
        self, sender: str, to: str, text: str, sid: str, **extra: str
    ) -> dict[str, str]:
        """What Twilio posts to a number's messaging webhook when it receives an SMS."""
        return {
            "ToCountry": "BR",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": text,
            "FromCountry": "BR",
            "To": to,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": sender,
            "ApiVersion": VERSION,
            **extra,
        }


def _problem(resource: str, form: dict[str, str]) -> tuple[int, str] | None:
    """Twilio's error code and message for a malformed request, or None."""
    to = form.get("To", "")
    if not to:
        return 21604, "A 'To' phone number is required."
    if not (to.startswith("+") and to[1:].isdigit()):
        return 21211, f"Invalid 'To' Phone Number: {to}"
    if resource == "Messages":
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 21603, "A 'From' or 'MessagingServiceSid' parameter is required."
        if not form.get("Body"):
            return 21602, "Message body is required."
        return None
    if not form.get("From"):
        return 21213, "'From' phone number is required."
    if not (form.get("Twiml") or form.get("Url")):
        return 21205, "Url, Twiml or ApplicationSid is required."
    try:
        root = ET.fromstring(form.get("Twiml") or "<Response/>")
    except ET.ParseError as exc:
        return 12100, f"Document parse failure: {exc}"
    if root.tag != "Response":
        return 12100, "Document parse failure: the root must be <Response>"
    return None
