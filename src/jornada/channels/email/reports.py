"""Pure: read a bounce (RFC 3464 DSN) or a complaint (RFC 5965 ARF) with the stdlib ``email``.

Both are ``multipart/report`` messages: a DSN (``report-type=delivery-status``)
has one field block per recipient (``Final-Recipient``, ``Action``,
``Status``); a complaint (``report-type=feedback-report``) names the recipient in
``Original-Rcpt-To`` (else the returned message's ``To``). The returned message
(or its headers) carries the Message-ID Jornada gave it, which names the message.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Literal

from jornada.channels.email.compose import parse_message_id
from jornada.errors import InvalidInput

MAX_REPORT_BYTES = 2 * 1024 * 1024  # a report quotes the original; 2 MB is plenty


@dataclass(frozen=True)
class Recipient:
    """One recipient of a report: its address, what happened (Action) and the status code."""

    address: str
    action: str  # failed | delayed | delivered | relayed | expanded | complaint
    status: str  # RFC 3463 enhanced status, e.g. 5.1.1; "" for a complaint
    diagnostic: str

    @property
    def hard_bounce(self) -> bool:
        """A permanent failure (5.x.x): the address must not be tried again."""
        return self.action == "failed" and self.status.startswith("5")


@dataclass(frozen=True)
class Report:
    kind: Literal["bounce", "complaint"]
    recipients: tuple[Recipient, ...]
    message: tuple[int, str] | None  # (message id, workspace id) of the returned message, if ours


def _address(value: str | None) -> str:
    """The address of ``rfc822; a@b`` or ``<a@b>`` or ``a@b``."""
    text = (value or "").strip()
    kind, sep, rest = text.partition(";")
    if sep and "@" not in kind:
        text = rest.strip()
    return parseaddr(text)[1].strip()


def _returned(report: EmailMessage) -> tuple[int, str] | None:
    """Our (message, workspace) from the returned message or headers part."""
    for part in report.iter_parts():
        kind = part.get_content_type()
        headers: Message | None = None
        if kind in ("message/rfc822", "message/global"):
            headers = _first_message(part)
        elif kind in ("text/rfc822-headers", "text/global-headers"):
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
            headers = HeaderParser().parsestr(text)
        if headers is not None and (found := parse_message_id(str(headers.get("Message-ID", "")))):
            return found
    return None


def _first_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def _part(report: EmailMessage, content_type: str) -> EmailMessage:
    for part in report.iter_parts():
        if part.get_content_type() == content_type:
            assert isinstance(part, EmailMessage)
            return part
    raise InvalidInput(f"the report has no {content_type} part", field="body")


def _blocks(part: EmailMessage) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    return [HeaderParser().parsestr(block) for block in str(payload).split("\n\n") if block.strip()]


def parse_report(raw: bytes) -> Report:
    """The bounce or complaint in ``raw``; anything else is an :class:`InvalidInput` on ``body``."""
    if not raw.strip():
        raise InvalidInput("the body is empty: send the report as the raw message", field="body")
    if len(raw) > MAX_REPORT_BYTES:
        raise InvalidInput(f"a report may be at most {MAX_REPORT_BYTES:,} bytes", field="body")
    report = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(report, EmailMessage)
    report_type = str(report.get_param("report-type", "") or "").lower()
    if report.get_content_type() != "multipart/report" or report_type not in (
        "delivery-status",
        "feedback-report",
    ):
        raise InvalidInput(
            "expected multipart/report with report-type delivery-status (RFC 3464) or "
            f"feedback-report (RFC 5965), not {report.get_content_type()}"
            + (f"; report-type={report_type}" if report_type else ""),
            field="body",
        )
    if report_type == "delivery-status":
        blocks = _blocks(_part(report, "message/delivery-status"))
        recipients = tuple(
            Recipient(
                address=_address(
                    str(block.get("Final-Recipient") or block.get("Original-Recipient"))
                ),
                action=str(block.get("Action", "")).strip().lower(),
                status=str(block.get("Status", "")).strip(),
                diagnostic=str(block.get("Diagnostic-Code", "")).strip(),
            )
            for block in blocks[1:]  # the first block is about the message, the rest per recipient
            if block.get("Final-Recipient") or block.get("Original-Recipient")
        )
        return Report("bounce", recipients, _returned(report))
    (fields, *_) = _blocks(_part(report, "message/feedback-report")) or [Message()]
    addresses = [_address(str(v)) for v in fields.get_all("Original-Rcpt-To", [])]
    if not addresses:
        for part in report.iter_parts():
            original = _first_message(part) if part.get_content_type() == "message/rfc822" else None
            if original is not None:
                addresses = [a for _, a in getaddresses(original.get_all("To", []))]
    feedback = str(fields.get("Feedback-Type", "abuse")).strip().lower()
    recipients = tuple(Recipient(a, "complaint", "", feedback) for a in addresses if "@" in a)
    return Report("complaint", recipients, _returned(report))
