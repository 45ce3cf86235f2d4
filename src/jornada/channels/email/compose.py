"""The e-mail as it goes out: multipart text + HTML, CSS inlined, tracked links, DKIM-signed.

From the stored message (the rendered template) this adds what only sending
needs: click redirects and an open pixel on signed tokens, for marketing an
unsubscribe footer and the RFC 8058 headers (``List-Unsubscribe`` with an
HTTPS one-click URL and a mailto, ``List-Unsubscribe-Post``), the CSS of the
layout inlined (mail clients drop ``<style>``), and a DKIM signature when the
provider has a key.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from html import escape
from typing import Any

import css_inline
import dkim  # type: ignore[import-untyped]

from jornada.channels.errors import PermanentDeliveryError
from jornada.channels.providers.secrets import Keyring
from jornada.channels.tracking import rewrite_links, sign_token

#: The layout a template's HTML is placed in; its CSS ends up in style attributes.
LAYOUT_CSS = (
    "body { font-family: Arial, Helvetica, sans-serif; font-size: 15px; line-height: 1.5;"
    " color: #222222; }\n"
    "a { color: #0b57d0; }\n"
    "p.jornada-footer { font-size: 12px; color: #777777; margin-top: 32px; }\n"
)
_INLINER = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
#: Headers the DKIM signature covers (those present in the message).
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
)
FOOTER = {
    "pt": ("Não quer mais receber nossos e-mails?", "Descadastre-se"),
    "en": ("Don't want these e-mails any more?", "Unsubscribe"),
}
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)  # where a full document's extras go
_MESSAGE_ID = re.compile(r"<jornada\.(\d+)\.([0-9A-Za-z]{1,26})@")


@dataclass(frozen=True)
class Outbound:
    """What a transport needs of a queued message (a snapshot read when it was claimed)."""

    id: int
    workspace_id: str
    contact_id: str
    channel: str
    purpose: str
    template: str
    to: str
    subject: str | None
    body: str
    text: str | None
    locale: str | None


def message_id_header(message: Outbound, sender_domain: str) -> str:
    """``<jornada.<id>.<workspace>@<domain>>``: what a bounce report quotes back to us."""
    return f"<jornada.{message.id}.{message.workspace_id}@{sender_domain}>"


def parse_message_id(value: str) -> tuple[int, str] | None:
    """(message id, workspace id) of a Message-ID Jornada made, else None."""
    found = _MESSAGE_ID.search(value)
    return (int(found[1]), found[2]) if found else None


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower() or "localhost"


def compose(
    message: Outbound,
    options: dict[str, Any],
    secrets: dict[str, Any],
    *,
    keys: Keyring,
    public_url: str,
    now: datetime,
) -> tuple[bytes, str, str]:
    """The message's bytes (CRLF, DKIM-signed if configured), envelope sender and Message-ID."""
    sender = str(options["from"])
    envelope_from = _envelope(sender)
    message_id = message_id_header(message, _domain(envelope_from))
    marketing = message.purpose == "marketing"
    unsubscribe = f"{public_url}/u/{sign_token(keys, 'unsubscribe', message.id)}"
    html = _html(message, keys, public_url, unsubscribe if marketing else None)
    text = (message.text or "").rstrip() + "\n"
    if marketing:
        question, action = FOOTER[_language(message.locale)]
        text += f"\n--\n{question} {action}: {unsubscribe}\n"

    headers = [
        ("From", _sender_header(sender)),
        ("To", message.to),
        ("Subject", _text_header(message.subject or "")),
        ("Date", _date_header(now, now.utcoffset())),
        ("Message-ID", message_id),
    ]
    if options.get("reply_to"):
        headers.append(("Reply-To", _sender_header(str(options["reply_to"]))))
    if marketing:
        # RFC 8058: the HTTPS URL takes a POST "List-Unsubscribe=One-Click"; the mailto is the fallback
        mailto = f"mailto:{envelope_from}?subject=unsubscribe%20{message.id}"
        headers.append(("List-Unsubscribe", f"<{unsubscribe}>,\r\n <{mailto}>"))
        headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    # "=_" never occurs in quoted-printable text (it would be "=3D_"): a boundary no part contains
    data = _mime(headers, text, html, boundary=f"=_jornada_{message.id}")
    if options.get("dkim_selector"):
        data = _dkim_sign(data, options, secrets)
    return data, envelope_from, message_id


@lru_cache(maxsize=16)
def _date_header(now: datetime, offset: timedelta | None) -> str:
    """The Date header of ``now`` (RFC 5322), which shows its ``offset``; a delivery pass
    stamps all its messages with the same ``now``, so it is formatted once."""
    return format_datetime(now)


@lru_cache(maxsize=256)
def _envelope(sender: str) -> str:
    """The address of ``Name <address>`` (MAIL FROM, where bounces go)."""
    return parseaddr(sender)[1]


@lru_cache(maxsize=256)
def _sender_header(value: str) -> str:
    """``Name <address>`` with the name RFC 2047-encoded when it is not ASCII."""
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address


def _text_header(value: str) -> str:
    """An unstructured header: as is when ASCII, else RFC 2047 words folded with CRLF."""
    value = " ".join(value.split())  # no line breaks may reach a header
    if value.isascii() and len(value) < 900:
        return value
    # RFC 2047 encoded words of at most 45 bytes (60 in base64), never splitting a character
    words, word = [], b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(word) + len(encoded) > 45:
            words.append(word)
            word = b""
        word += encoded
    words.append(word)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words)


def _qp(text: str) -> bytes:
    """Quoted-printable (RFC 2045) with CRLF line ends; lines stay under 77 characters."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(normal, istext=True).replace(b"\n", b"\r\n")


def _mime(headers: list[tuple[str, str]], text: str, html: str, *, boundary: str) -> bytes:
    """A multipart/alternative message (text, then HTML: clients show the last they can)."""
    lines = [f"{name}: {value}" for name, value in headers]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
    ]
    head = "\r\n".join(lines).encode("ascii", "replace") + b"\r\n"
    parts = b""
    for subtype, content in (("plain", text), ("html", html)):
        parts += (
            f"--{boundary}\r\n"
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        parts += _qp(content) + b"\r\n"
    return head + parts + f"--{boundary}--\r\n".encode("ascii")


def _language(locale: str | None) -> str:
    return "en" if (locale or "").lower().startswith("en") else "pt"


def _html(message: Outbound, keys: Keyring, public_url: str, unsubscribe: str | None) -> str:
    """The stored HTML with tracked links, the footer and the pixel, in the layout, CSS inlined."""
    body = rewrite_links(message.body, public_url, keys, message.id)
    extra = ""
    if unsubscribe is not None:
        question, action = FOOTER[_language(message.locale)]
        extra += (
            f'<p class="jornada-footer">{escape(question)} '
            f'<a href="{escape(unsubscribe)}">{escape(action)}</a></p>'
        )
    pixel = f"{public_url}/o/{sign_token(keys, 'open', message.id)}"
    extra += f'<img src="{escape(pixel)}" width="1" height="1" alt="" style="display:block">'
    lang = "en" if _language(message.locale) == "en" else "pt-BR"
    if _BODY_END.search(body):
        document = _BODY_END.sub(lambda _: extra + "</body>", body, count=1)
        if "<head" not in document.lower():
            document = document.replace(
                "<body", f"<head><style>{LAYOUT_CSS}</style></head><body", 1
            )
    else:
        document = (
            f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            f"<style>{LAYOUT_CSS}</style></head><body>{body}{extra}</body></html>"
        )
    try:
        return _INLINER.inline(document)
    except css_inline.InlineError as exc:
        raise PermanentDeliveryError(f"the HTML's CSS cannot be inlined: {exc}") from exc


def _dkim_sign(data: bytes, options: dict[str, Any], secrets: dict[str, Any]) -> bytes:
    """Prepend a DKIM-Signature (relaxed/relaxed, rsa-sha256) over the usual headers."""
    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line and not line[:1].isspace()
    }
    try:
        signature: bytes = dkim.sign(
            data,
            str(options["dkim_selector"]).encode(),
            str(options["dkim_domain"]).encode(),
            str(secrets["dkim_private_key"]).encode(),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[h for h in SIGNED_HEADERS if h in present],
        )
    except (dkim.DKIMException, KeyError) as exc:
        raise PermanentDeliveryError(f"DKIM signing failed: {exc}") from exc
    return signature + data
