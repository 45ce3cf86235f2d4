"""Signed tokens for the open pixel, click redirects and unsubscribe links; the links of a body.

A token names a message (and, for a click, the index of a link in the
message's stored HTML) and carries an HMAC under the server's key, so it cannot
be forged or altered. A click goes to the URL found at that index in the
stored message, never to a URL taken from the request: no open redirect.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from html import unescape
from typing import Literal

from jornada.channels.providers.secrets import Keyring

Purpose = Literal["open", "click", "unsubscribe"]
_PREFIX: dict[str, str] = {"open": "o", "click": "c", "unsubscribe": "u"}
_MAC_BYTES = 16  # 128 bits of HMAC-SHA256: forging one is out of reach

#: An ``<a … href="…">``'s target, in document order (single or double quotes).
LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    message_id: int
    link: int | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(keys: Keyring, purpose: Purpose, message_id: int, link: int | None = None) -> str:
    """A URL-safe token for ``message_id`` (and link index) that only this server can make."""
    payload = f"{_PREFIX[purpose]}{message_id}" + ("" if link is None else f".{link}")
    mac = keys.sign(payload.encode("ascii"))[:_MAC_BYTES]
    return f"{payload}.{_b64(mac)}"


def read_token(keys: Keyring, purpose: Purpose, token: str) -> Token | None:
    """The message (and link) a token names, or None for a malformed, altered or foreign one."""
    payload, _, mac = token.rpartition(".")
    match = re.fullmatch(rf"{_PREFIX[purpose]}(\d{{1,18}})(?:\.(\d{{1,6}}))?", payload)
    if match is None:
        return None
    try:
        signature = _unb64(mac)
    except (binascii.Error, ValueError):
        return None
    if len(signature) != _MAC_BYTES or not keys.verify(payload.encode("ascii"), signature):
        return None
    return Token(int(match[1]), None if match[2] is None else int(match[2]))


def trackable(url: str) -> bool:
    """Only web links are tracked; mailto:, tel: and anchors go as written."""
    return url.lower().startswith(("http://", "https://"))


def links(html: str) -> list[str]:
    """The targets of the ``<a href>`` of ``html``, unescaped, in document order."""
    return [unescape(m[3]).strip() for m in LINK.finditer(html)]


def rewrite_links(html: str, target: str, keys: Keyring, message_id: int) -> str:
    """``html`` with each web link pointing at ``target/c/<token>`` (index = position in :func:`links`)."""
    counter = iter(range(1_000_000))

    def swap(match: re.Match[str]) -> str:
        index = next(counter)
        if not trackable(unescape(match[3]).strip()):
            return match[0]
        token = sign_token(keys, "click", message_id, index)
        return f"{match[1]}{match[2]}{target}/c/{token}{match[2]}"

    return LINK.sub(swap, html)
