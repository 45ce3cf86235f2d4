"""Twilio's callbacks: the signature, the keywords of an inbound SMS, statuses applied.

Twilio signs every request it makes with ``X-Twilio-Signature``: the base64
HMAC-SHA1, under the account's Auth Token, of the full URL it was given followed
by each POST parameter, sorted by name, as name + value with no separator
(twilio.com/docs/usage/webhooks/webhooks-security). A status callback names the
message by ``MessageSid`` (``MessageStatus``) or ``CallSid`` (``CallStatus``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import escape

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from jornada.channels.history import suppress
from jornada.channels.models import Message, Suppression
from jornada.channels.statuses import advance

Params = Mapping[str, Sequence[str]]
Keyword = Literal["stop", "start", "help"]

#: Opt-out words: Twilio's own (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) and Portuguese.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "SAIR", "PARAR", "CANCELAR"}
)
#: Opt-in words: Twilio's (START, UNSTOP, YES) and Portuguese.
START_WORDS = frozenset({"START", "UNSTOP", "YES", "VOLTAR"})
#: Help words: Twilio's (HELP, INFO) and Portuguese.
HELP_WORDS = frozenset({"HELP", "INFO", "AJUDA"})
#: The channels a STOP on SMS stops (a call reaches the same phone).
STOPPED_CHANNELS = ("sms", "voice")
#: How long after our last SMS an inbound one still counts as the reply to it.
REPLY_WINDOW = timedelta(days=7)
EMPTY_TWIML = "<Response/>"

#: A message status callback's ``MessageStatus`` → our status ("read": WhatsApp/RCS via Twilio).
MESSAGE_STATUSES = {"sent": "sent", "delivered": "delivered", "read": "opened"}
#: A call status callback's ``CallStatus`` that means it was not answered, and why.
CALL_FAILURES = {
    "busy": "the line was busy",
    "no-answer": "nobody answered",
    "failed": "the call could not be placed",
    "canceled": "the call was cancelled",
}
#: Delivery error codes of the status callbacks (twilio.com/docs/api/errors).
ERROR_CODES = {
    "21610": "the recipient replied STOP",
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error",
    "30034": "message from an unregistered number",
}
#: Codes that say the number can never get an SMS: it goes on the list as ``hard_bounce``.
BOUNCE_ERRORS = frozenset({"30005", "30006"})


# -- signature -----------------------------------------------------------------------------
def form_params(body: bytes) -> dict[str, list[str]]:
    """The POST parameters of a form-encoded body, every value of a repeated name kept."""
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def signature(auth_token: str, url: str, params: Params) -> str:
    """``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
    signed = url + "".join(
        name + value for name in sorted(params) for value in sorted(set(params[name]))
    )
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_and_without_port(url: str) -> list[str]:
    """``url`` as given, without its port, and with the scheme's default port.

    Twilio's own validators accept either: the port Twilio signs with is not
    always the one in the URL it was given.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    forms = [url]
    if parts.port is not None:
        forms.append(urlunsplit(parts._replace(netloc=host)))
    else:
        forms.append(urlunsplit(parts._replace(netloc=f"{host}:{default}")))
    return forms


def valid_signature(auth_token: str, url: str, params: Params, header: str | None) -> bool:
    """Whether ``header`` is Twilio's signature of this request (compared in constant time)."""
    if not header or not auth_token:
        return False
    given = header.strip().encode()
    return any(
        hmac.compare_digest(signature(auth_token, form, params).encode(), given)
        for form in _with_and_without_port(url)
    )


# -- inbound SMS ---------------------------------------------------------------------------
def keyword(text: str | None, opt_out_type: str | None = None) -> Keyword | None:
    """``stop``, ``start`` or ``help`` when the SMS is one of those words, else None.

    The whole message must be the word: case, surrounding spaces, final
    punctuation and accents do not count (``Sair.`` is SAIR). Twilio's Advanced
    Opt-Out names the keyword it matched in ``OptOutType``; that is taken first.
    """
    told = (opt_out_type or "").strip().upper()
    if told in ("STOP", "START", "HELP"):
        return "stop" if told == "STOP" else "start" if told == "START" else "help"
    decomposed = unicodedata.normalize("NFKD", text or "")
    word = "".join(c for c in decomposed if not unicodedata.combining(c))
    word = word.strip().rstrip(".!?;").strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def reply_twiml(text: str) -> str:
    """A TwiML answer that sends ``text`` back to whoever wrote."""
    return f"<Response><Message>{escape(text)}</Message></Response>"


def help_text(shop_name: str, shop_url: str | None) -> str:
    """The answer to HELP/AJUDA: who is writing, how to stop and come back, where to ask."""
    text = (
        f"{shop_name}: você recebe nossos SMS porque é nosso cliente. "
        "Para não receber mais, responda SAIR; para voltar a receber, VOLTAR."
    )
    if shop_url:
        text += f" Atendimento: {shop_url.rstrip('/')}"
    return text


def stop_phone(session: Session, workspace_id: str, phone: str, now: datetime) -> None:
    """A STOP: the phone goes on the suppression list for SMS and voice, reason ``stop``."""
    for channel in STOPPED_CHANNELS:
        suppress(session, workspace_id, channel, phone, "stop", now)


def lift_stop(session: Session, workspace_id: str, phone: str) -> int:
    """A START: the phone's ``stop`` entries go (a bounce, complaint or erasure stays)."""
    result = session.execute(
        delete(Suppression).where(
            Suppression.workspace_id == workspace_id,
            Suppression.channel.in_(STOPPED_CHANNELS),
            Suppression.address == phone.strip(),
            Suppression.reason == "stop",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def last_sms_to(session: Session, workspace_id: str, phone: str, now: datetime) -> Message | None:
    """Our latest SMS to ``phone`` sent within :data:`REPLY_WINDOW`: what an inbound SMS answers."""
    return session.scalar(
        select(Message)
        .where(
            Message.workspace_id == workspace_id,
            Message.channel == "sms",
            Message.to_address == phone,
            Message.sent_at.is_not(None),
            Message.sent_at > now - REPLY_WINDOW,
            Message.sent_at <= now,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    )


# -- statuses ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusUpdate:
    """What became of a message or a call we made."""

    sid: str
    channel: Literal["sms", "voice"]
    status: str  # Twilio's MessageStatus or CallStatus, as given
    at: datetime
    error_code: str | None
    error_message: str | None


def _first(params: Params, name: str) -> str | None:
    values = params.get(name) or []
    return values[0].strip() if values and values[0].strip() else None


def _moment(value: str | None, default: datetime) -> datetime:
    if not value:
        return default
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    return moment.astimezone(UTC) if moment.tzinfo is not None else default


def parse_status(params: Params, now: datetime) -> StatusUpdate | None:
    """The status a callback reports, or None when it names neither a message nor a call."""
    error_code, error_message = _first(params, "ErrorCode"), _first(params, "ErrorMessage")
    call_sid, call_status = _first(params, "CallSid"), _first(params, "CallStatus")
    message_sid = _first(params, "MessageSid") or _first(params, "SmsSid")
    message_status = _first(params, "MessageStatus") or _first(params, "SmsStatus")
    if message_sid and message_status:
        return StatusUpdate(message_sid, "sms", message_status, now, error_code, error_message)
    if call_sid and call_status:
        at = _moment(_first(params, "Timestamp"), now)
        return StatusUpdate(call_sid, "voice", call_status, at, error_code, error_message)
    return None


def _error(update: StatusUpdate) -> str:
    if update.channel == "voice":
        said = f"Twilio call {update.status}: {CALL_FAILURES.get(update.status, 'failed')}"
    else:
        said = f"Twilio SMS {update.status}"
    if update.error_code:
        known = update.error_message or ERROR_CODES.get(update.error_code)
        said += f": error {update.error_code}" + (f" ({known})" if known else "")
    return said


def apply_status(
    session: Session, workspace_id: str, update: StatusUpdate, *, message_id: int | None = None
) -> Message | None:
    """Move the message ``update`` names forward; a failure keeps Twilio's code.

    SMS: sent, delivered, read (our opened); undelivered and failed fail it,
    and an unknown handset or a landline (30005, 30006) bounces it and lists
    the number for SMS. Calls: completed is delivered (answered); busy,
    no-answer, failed and canceled fail it. A status never moves a message back.

    ``message_id`` (from the callback URL) finds a message whose sid is not
    recorded yet: Twilio may call back before the delivery pass has written it.
    """
    message = session.scalar(
        select(Message).where(
            Message.workspace_id == workspace_id,
            Message.channel == update.channel,
            Message.provider_message_id == update.sid,
        )
    )
    if message is None and message_id is not None:
        message = session.scalar(
            select(Message).where(
                Message.id == message_id,
                Message.workspace_id == workspace_id,
                Message.channel == update.channel,
                Message.provider_message_id.is_(None),
            )
        )
        if message is not None:
            message.provider_message_id = update.sid
    if message is None:
        return None
    if update.channel == "sms" and update.status in MESSAGE_STATUSES:
        advance(message, MESSAGE_STATUSES[update.status], update.at)
    elif update.channel == "voice" and update.status == "completed":
        advance(message, "delivered", update.at)
    elif update.status in ("undelivered", "failed") or (
        update.channel == "voice" and update.status in CALL_FAILURES
    ):
        bounced = update.channel == "sms" and update.error_code in BOUNCE_ERRORS
        if bounced and message.bounced_at is None:
            message.bounced_at = update.at
        elif message.failed_at is None:
            message.failed_at = update.at
        if message.status not in ("failed", "bounced"):
            message.status = "bounced" if bounced else "failed"
        message.error = _error(update)[:500]
        reason = "hard_bounce" if bounced else "stop" if update.error_code == "21610" else None
        if reason is not None and message.to_address:
            suppress(session, workspace_id, update.channel, message.to_address, reason, update.at)
    return message
