"""Web Push provider settings (VAPID, RFC 8292) and the subscription fields a browser sends.

A workspace's push provider holds one P-256 key pair: the public key is the
``applicationServerKey`` browsers subscribe with, the private key signs the
VAPID JWT of every push. ``subject`` (a ``mailto:`` or ``https:`` URL) is the
contact a push service may reach when something goes wrong (RFC 8292 §2.1).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jornada.errors import InvalidInput

OPTIONS = ("subject", "public_key", "title", "url", "icon")
SECRETS = ("private_key",)
PUBLIC_KEY_BYTES = 65  # an uncompressed P-256 point: 0x04 ‖ x ‖ y
PRIVATE_KEY_BYTES = 32  # the P-256 scalar
AUTH_BYTES = 16  # the subscription's auth secret (RFC 8291 §3.2)
MAX_ENDPOINT = 1000  # characters; push services' endpoints are a few hundred
_MAILTO = re.compile(r"^mailto:[^@\s]+@[^@\s]+\.[^@\s]+$")


def b64url(data: bytes) -> str:
    """Base64url without padding, as Web Push writes keys."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The bytes of a base64url string, padded or not; ValueError when it is not base64url."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def generate_keys() -> tuple[str, str]:
    """A new VAPID key pair: (public key, private key), both base64url (65 and 32 bytes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    scalar = key.private_numbers().private_value.to_bytes(PRIVATE_KEY_BYTES, "big")
    return public_key_of(b64url(scalar)), b64url(scalar)


def public_key_of(private_key: str) -> str:
    """The base64url uncompressed public point of a base64url private scalar."""
    scalar = int.from_bytes(unb64url(private_key), "big")
    point = (
        ec.derive_private_key(scalar, ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64url(point)


def check_point(value: str, field: str, what: str) -> str:
    """``value`` if it is a base64url uncompressed P-256 point; else InvalidInput on ``field``."""
    try:
        raw = unb64url(value)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise InvalidInput(
            f"{what} must be a base64url uncompressed P-256 point (65 bytes)", field=field
        ) from exc
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidInput(
            f"{what} must be a base64url uncompressed P-256 point (65 bytes)", field=field
        )
    return b64url(raw)


def check_subject(value: str) -> str:
    """A VAPID subject: ``mailto:address`` or an ``https://`` URL (RFC 8292 §2.1)."""
    value = value.strip()
    parts = urlsplit(value)
    if _MAILTO.match(value) or (parts.scheme == "https" and parts.netloc):
        return value
    raise InvalidInput(
        f"subject must be mailto:address or an https:// URL, not {value!r}",
        field="options.subject",
    )


def validate_webpush(
    options: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked settings: ``subject``, ``public_key`` (options) and ``private_key`` (secret).

    Optional options: ``title`` (a notification's title when its template has
    no subject), ``url`` (the page a click opens when the message names none)
    and ``icon`` (an image URL).

    The public key must be the private key's: a pair that does not match would
    sign pushes no subscription accepts.
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"unknown push option {unknown[0]!r}", field=f"options.{unknown[0]}")
    subject = check_subject(str(options.get("subject") or ""))
    public = check_point(str(options.get("public_key") or ""), "options.public_key", "public_key")
    private = str(secrets.get("private_key") or "").strip()
    try:
        raw = unb64url(private)
        if len(raw) != PRIVATE_KEY_BYTES:
            raise ValueError("length")
        derived = public_key_of(private)
    except ValueError as exc:
        raise InvalidInput(
            "private_key must be a base64url P-256 private key (32 bytes)",
            field="secrets.private_key",
        ) from exc
    if derived != public:
        raise InvalidInput(
            "public_key is not the public half of private_key", field="options.public_key"
        )
    clean: dict[str, Any] = {"subject": subject, "public_key": public}
    title = str(options.get("title") or "").strip()
    if title:
        clean["title"] = title[:100]
    for name in ("url", "icon"):
        value = str(options.get(name) or "").strip()
        if not value:
            continue
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                f"{name} must be an http(s) URL, not {value!r}", field=f"options.{name}"
            )
        clean[name] = value
    return clean, {"private_key": b64url(raw)}


def describe_webpush(options: dict[str, Any], secrets: dict[str, Any]) -> str:
    """``VAPID key BOr…xyz, subject mailto:…, private key ****``."""
    key = str(options.get("public_key") or "")
    shown = f"{key[:8]}…{key[-6:]}" if len(key) > 16 else key
    private = "****" if secrets.get("private_key") else "missing"
    return f"VAPID key {shown}, subject {options.get('subject')}, private key {private}"


def loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(value: Any) -> str:
    """A push service endpoint: ``https://`` (``http://`` only to a loopback host, for tests and
    local push services); at most :data:`MAX_ENDPOINT` characters."""
    field = "subscription.endpoint"
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput("the subscription's endpoint is missing", field=field)
    if len(text) > MAX_ENDPOINT:
        raise InvalidInput(f"the endpoint is over {MAX_ENDPOINT} characters", field=field)
    parts = urlsplit(text)
    if not parts.netloc or not (
        parts.scheme == "https" or (parts.scheme == "http" and loopback(parts.hostname))
    ):
        raise InvalidInput(
            "the endpoint must be an https:// URL (http:// only on a loopback host)", field=field
        )
    return text


def check_auth(value: Any) -> str:
    """The subscription's auth secret: 16 bytes, base64url."""
    field = "subscription.keys.auth"
    try:
        raw = unb64url(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != AUTH_BYTES:
        raise InvalidInput("keys.auth must be 16 bytes, base64url", field=field)
    return b64url(raw)
