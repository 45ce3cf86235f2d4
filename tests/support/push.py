"""A local push service that follows RFC 8030 (Web Push), 8291 (encryption) and 8292 (VAPID).

It stands in for FCM, Mozilla's autopush or Apple's service. A test makes
subscriptions as a browser does (:meth:`PushService.subscribe`: a P-256 key
pair and a 16-byte auth secret the service keeps, as the user agent would),
and every ``POST /push/<token>`` is checked as a push service checks it:

* ``Authorization: vapid t=<JWT>, k=<public key>``: the ES256 signature verifies
  with ``k``; ``aud`` is this service's origin; ``exp`` is in the future and at
  most 24 h away (RFC 8292 §2); ``sub`` is present. When the subscription was made
  with an ``applicationServerKey``, ``k`` must be that key (else 403, as FCM does);
* ``Content-Encoding: aes128gcm`` and a ``TTL`` header (RFC 8030 §5.2);
* the body decrypts with the subscription's private key and auth secret.

A good push is kept (:attr:`received`, the decrypted JSON payload) and answered
201 with a ``Location``. ``answer`` makes the next pushes to a subscription
answer another status (410, 404, 429, 500…); a refused push is kept in
:attr:`problems` with the reason, so a test can say none was refused.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.support.loopback import Loopback, QuietHandler


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscription as the browser holds it: the private half stays here."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None

    def json(self) -> dict[str, Any]:
        """``PushSubscription.toJSON()``."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


@dataclass
class Push:
    """One accepted push: where it went, its headers, the decrypted payload."""

    token: str
    ttl: int
    claims: dict[str, Any]
    payload: dict[str, Any]


@dataclass
class PushService(Loopback):
    received: list[Push] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # token → status to answer
    browsers: dict[str, Browser] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.url

    def subscribe(self, application_server_key: str | None = None) -> Browser:
        """A new subscription, made as ``pushManager.subscribe`` makes it."""
        token = b64url(os.urandom(12))
        browser = Browser(
            token,
            f"{self.origin}/push/{token}",
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
            application_server_key,
        )
        self.browsers[token] = browser
        return browser

    def answer(self, browser: Browser, status: int) -> None:
        """The next pushes to ``browser`` get ``status`` (410 also forgets the subscription)."""
        self.answers[browser.token] = status

    def start(self) -> PushService:
        service = self

        class Handler(QuietHandler):
            def _send(self, status: int, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _refuse(self, status: int, reason: str) -> None:
                service.problems.append(reason)
                self._send(status)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = self.path.removeprefix("/push/")
                browser = service.browsers.get(token)
                if not self.path.startswith("/push/") or browser is None:
                    self._send(404)
                    return
                if token in service.answers:
                    status = service.answers[token]
                    if status == 410:
                        service.browsers.pop(token, None)
                    self._send(status, {"Retry-After": "60"} if status == 429 else None)
                    return
                claims, problem = _check_vapid(
                    self.headers.get("Authorization"), service.origin, browser
                )
                if problem is not None:
                    self._refuse(401 if "403" not in problem else 403, problem)
                    return
                if self.headers.get("Content-Encoding") != "aes128gcm":
                    self._refuse(400, f"Content-Encoding {self.headers.get('Content-Encoding')}")
                    return
                ttl = self.headers.get("TTL")
                if ttl is None or not ttl.isdigit():
                    self._refuse(400, f"TTL header {ttl!r}")
                    return
                try:
                    plain = http_ece.decrypt(
                        body,
                        private_key=browser.private_key,
                        auth_secret=browser.auth,
                        version="aes128gcm",
                    )
                    payload = json.loads(plain)
                except Exception as exc:  # a push the browser could not read
                    self._refuse(400, f"cannot decrypt: {exc!r}")
                    return
                service.received.append(Push(token, int(ttl), claims, payload))
                self._send(201, {"Location": f"{service.origin}/message/{len(service.received)}"})

        self.serve(Handler)
        return self


def _check_vapid(
    header: str | None, origin: str, browser: Browser
) -> tuple[dict[str, Any], str | None]:
    """The JWT's claims and what is wrong with the VAPID header (None: nothing)."""
    scheme, _, rest = (header or "").partition(" ")
    if scheme.lower() != "vapid":
        return {}, f"Authorization scheme {scheme!r}, not vapid"
    parts = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
    token, key = parts.get("t"), parts.get("k")
    if not token or not key:
        return {}, "Authorization lacks t= or k="
    try:
        signed, _, signature = token.rpartition(".")
        header_b64, _, claims_b64 = signed.partition(".")
        jose = json.loads(unb64url(header_b64))
        claims = json.loads(unb64url(claims_b64))
        raw = unb64url(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        public.verify(der, signed.encode(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature) as exc:
        return {}, f"bad JWT: {exc!r}"
    if jose.get("alg") != "ES256" or len(raw) != 64:
        return claims, f"JWT alg {jose.get('alg')!r} / signature of {len(raw)} bytes"
    now = time.time()
    if claims.get("aud") != origin:
        return claims, f"aud {claims.get('aud')!r}, not {origin}"
    if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 24 * 3600:
        return claims, f"exp {claims.get('exp')!r} not within the next 24 h"
    if not claims.get("sub"):
        return claims, "no sub claim"
    if browser.application_server_key and key.rstrip("=") != browser.application_server_key:
        return claims, "403: k is not the applicationServerKey the subscription was made with"
    return claims, None
