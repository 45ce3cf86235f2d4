"""A local webhook receiver that checks Jornada's signature as the docs tell receivers to."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field

from tests.support.loopback import Loopback, QuietHandler

TOLERANCE = 5 * 60  # seconds a timestamp may differ from the receiver's clock


def verify(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """The receiver's check (docs/channels.md "Outgoing webhooks"), constant time."""
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(f"v1={expected.hexdigest()}", signature)


@dataclass
class Call:
    """One request as received, and whether its signature verified."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int


@dataclass
class Receiver(Loopback):
    """Answers each POST with the next status of ``statuses`` (then 200)."""

    secret: str = ""
    statuses: list[int] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    check_time: bool = False  # delivery tests run on a virtual clock: off unless asked

    def start(self) -> Receiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                timestamp = self.headers.get("X-Jornada-Timestamp", "")
                verified = verify(
                    receiver.secret, body, timestamp, self.headers.get("X-Jornada-Signature", "")
                )
                if receiver.check_time:
                    verified = verified and abs(time.time() - int(timestamp or 0)) <= TOLERANCE
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if not verified:
                    status = 401
                receiver.calls.append(
                    Call(self.path, dict(self.headers.items()), body, verified, status)
                )
                data = b'{"ok": true}' if status < 300 else b'{"error": "nope"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.serve(Handler)
        return self
