"""Send SMS (Messages API) and calls (Calls API with TwiML) through Twilio, every failure mapped to ours.

``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`` (or
``Calls.json``), form-encoded, with HTTP Basic auth ``AccountSid:AuthToken``;
Twilio answers 201 with the new resource, whose ``sid`` (``SM…``, ``CA…``) the
status callbacks name. A call speaks the message's text (``<Say>``), or plays
it when the text is just the URL of an audio file (``<Play>``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx

from jornada.channels.email.compose import Outbound
from jornada.channels.errors import (
    PermanentDeliveryError,
    ProviderUnavailable,
    TransientDeliveryError,
    describe_answer,
)
from jornada.channels.twilio.config import DEFAULT_BASE_URL, DEFAULT_LANGUAGE
from jornada.channels.whatsapp.send import map_http_errors

API_VERSION = "2010-04-01"
#: Twilio codes for a recipient that can never get the message: 21211 invalid 'To' number,
#: 21614 'To' is not a mobile number (error dictionary, twilio.com/docs/api/errors).
BOUNCE_CODES = frozenset({21211, 21614})
#: 21610: the recipient replied STOP to this sender; Twilio refuses until they reply START.
STOP_CODES = frozenset({21610})
#: The workspace's settings are wrong, no message is at fault: 20003 authentication, 20404 no
#: such account, 21210/21212/21606/21659 the From number is not usable by this account,
#: 21701/21705 the messaging service.
CREDENTIAL_CODES = frozenset({20003, 20404, 21210, 21212, 21606, 21659, 21701, 21705})
#: 21609: Twilio refuses the StatusCallback URL (malformed, or not reachable from the Internet):
#: JORNADA_PUBLIC_URL is wrong, every message would fail the same way.
CALLBACK_CODES = frozenset({21609})
#: Try again later: 20429 too many requests, 14107 SMS rate limit, 21611 the From number's queue
#: is full, 30001 queue overflow.
THROTTLE_CODES = frozenset({20429, 14107, 21611, 30001})
#: Twilio takes at most this many characters in a call's ``Twiml`` parameter.
MAX_TWIML = 4000
#: The audio formats ``<Play>`` takes (MP3, WAV, AIFF, GSM, μ-law).
_AUDIO = re.compile(r"^https?://\S+\.(mp3|wav|wave|aif|aiff|gsm|ulaw)(\?\S*)?$", re.IGNORECASE)


def twiml(text: str, language: str = DEFAULT_LANGUAGE, voice: str | None = None) -> str:
    """The TwiML of a call: ``<Play>`` for an audio file's URL, else ``<Say>`` the text."""
    body = text.strip()
    if _AUDIO.match(body):
        return f"<Response><Play>{escape(body)}</Play></Response>"
    attributes = f" language={quoteattr(language)}"
    if voice:
        attributes = f" voice={quoteattr(voice)}" + attributes
    return f"<Response><Say{attributes}>{escape(body)}</Say></Response>"


def message_form(
    message: Outbound, options: dict[str, Any], status_callback: str
) -> dict[str, str]:
    """The Messages API's form for an SMS: ``MessagingServiceSid`` when set, else ``From``."""
    form = {"To": message.to.strip(), "Body": message.body, "StatusCallback": status_callback}
    if options.get("messaging_service_sid"):
        form["MessagingServiceSid"] = str(options["messaging_service_sid"])
    else:
        form["From"] = str(options["from"])
    return form


def call_form(message: Outbound, options: dict[str, Any], status_callback: str) -> dict[str, str]:
    """The Calls API's form: the TwiML inline, so Twilio needs no URL of ours to fetch it."""
    if not options.get("from"):
        raise ProviderUnavailable(
            "Twilio calls need a from number (options.from): a messaging service only sends SMS",
            field="options.from",
        )
    document = twiml(
        message.body, str(options.get("language") or DEFAULT_LANGUAGE), options.get("voice")
    )
    if len(document) > MAX_TWIML:
        raise PermanentDeliveryError(
            f"the call's TwiML is {len(document):,} characters; Twilio takes at most {MAX_TWIML:,}"
        )
    return {
        "To": message.to.strip(),
        "From": str(options["from"]),
        "Twiml": document,
        "StatusCallback": status_callback,
    }


def _twilio_error(response: httpx.Response) -> tuple[int | None, str]:
    """The error's code and ``HTTP 400 code 21211: message (more_info)``, from what was answered."""
    try:
        error = response.json()
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    text = str(error.get("message") or response.reason_phrase or "no message").strip()
    return code, describe_answer(response.status_code, code, text, error.get("more_info"))


def raise_for_answer(response: httpx.Response) -> None:
    """Map a non-2xx answer to the delivery error tree (STYLE §4)."""
    if response.is_success:
        return
    code, said = _twilio_error(response)
    status = response.status_code
    message = f"Twilio: {said}"
    if status >= 500 or status in (401, 403, 404) or code in CREDENTIAL_CODES:
        raise ProviderUnavailable(message, provider_code=code)
    if code in CALLBACK_CODES:
        raise ProviderUnavailable(
            f"{message}; JORNADA_PUBLIC_URL must be an address Twilio reaches",
            field="JORNADA_PUBLIC_URL",
            provider_code=code,
        )
    if status == 429 or code in THROTTLE_CODES:
        raise TransientDeliveryError(message, provider_code=code)
    if code in STOP_CODES:
        raise PermanentDeliveryError(message, suppress="stop", provider_code=code)
    raise PermanentDeliveryError(message, bounce=code in BOUNCE_CODES, provider_code=code)


class TwilioTransport:
    """One HTTP client (a connection pool) for one workspace's Twilio account: SMS and calls."""

    def __init__(
        self,
        options: dict[str, Any],
        secrets: dict[str, Any],
        *,
        status_callback: str,
        base_url: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        account = str(options["account_sid"])
        root = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/{API_VERSION}/Accounts/{account}"
        self.urls = {"sms": f"{root}/Messages.json", "voice": f"{root}/Calls.json"}
        self.options = dict(options)
        self.status_callback = status_callback
        self._client = httpx.Client(timeout=timeout, auth=(account, str(secrets["auth_token"])))

    def send(self, message: Outbound, now: datetime) -> str:
        """Send ``message`` (an SMS, or a call on the voice channel); the ``sid`` Twilio gave it."""
        if not message.to.strip():
            raise PermanentDeliveryError("the message has no phone number")
        # our id in the callback URL: a status that comes before the sid is recorded still
        # finds its message
        callback = f"{self.status_callback}?m={message.id}"
        if message.channel == "voice":
            form = call_form(message, self.options, callback)
        elif message.channel == "sms":
            form = message_form(message, self.options, callback)
        else:
            raise PermanentDeliveryError(f"Twilio sends sms and voice, not {message.channel}")
        with map_http_errors("cannot reach the Twilio API"):
            response = self._client.post(self.urls[message.channel], data=form)
        raise_for_answer(response)
        try:
            sid = str(response.json()["sid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientDeliveryError(
                f"Twilio: unexpected answer {response.text[:200]!r}"
            ) from exc
        return sid

    def close(self) -> None:
        self._client.close()
