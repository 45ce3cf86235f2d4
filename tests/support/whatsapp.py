"""A local WhatsApp Cloud API that follows the documented contract, for the delivery tests.

It answers ``POST /{version}/{phone_number_id}/messages`` as Meta does: the
Bearer token and the phone number id must be the configured ones, the body a
``messaging_product: whatsapp`` message of type ``template`` or ``text``; it
returns ``{"messaging_product", "contacts": [{"input", "wa_id"}], "messages":
[{"id": "wamid…"}]}``. Told to, it answers a 5xx or a Graph API error object.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    """One accepted send: the path, headers and JSON body as received."""

    path: str
    authorization: str | None
    body: dict[str, Any]


@dataclass
class CloudApi:
    """The fake API; ``fail_with`` makes the next sends answer (status, error object or None)."""

    token: str = "EAAG-test-token"
    phone_number_id: str = "109876543210"
    version: str = "v21.0"
    received: list[Request] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any] | None] | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> CloudApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

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
                kind = body.get("type")
                well_formed = (
                    body.get("messaging_product") == "whatsapp"
                    and str(body.get("to", "")).isdigit()
                    and (
                        (kind == "text" and isinstance(body.get("text", {}).get("body"), str))
                        or (
                            kind == "template"
                            and isinstance(body.get("template", {}).get("name"), str)
                            and isinstance(body["template"].get("language", {}).get("code"), str)
                        )
                    )
                )
                if not well_formed:
                    self._error(400, 100, "(#100) Invalid parameter")
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

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
