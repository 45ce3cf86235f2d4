"""Twilio provider settings, checked field by field (one kind for the ``sms`` and ``voice`` channels)."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from jornada.errors import InvalidInput

DEFAULT_BASE_URL = "https://api.twilio.com"
DEFAULT_LANGUAGE = "pt-BR"  # the language <Say> speaks a call's text in
OPTIONS = ("account_sid", "from", "messaging_service_sid", "language", "voice")
SECRETS = ("auth_token",)
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_AUTH_TOKEN = re.compile(r"^[0-9a-fA-F]{32}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")
_VOICE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")


def e164(value: str, field: str) -> str:
    """``value`` as an E.164 number (``+5511987654321``), or an error naming ``field``."""
    text, name = value.strip(), field.split(".")[-1]
    if not text.startswith("+"):
        raise InvalidInput(
            f"{name} must be an E.164 number such as +5511987654321, not {text!r}", field=field
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"{name}: {text!r} is not a phone number: {exc}", field=field) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{name}: {text!r} is not a valid phone number", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_twilio(
    options: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked and normalised settings; a wrong one names its field and why.

    options: ``account_sid`` (``AC`` + 32 hex digits), the sender: ``from`` (a
    Twilio number in E.164) and/or ``messaging_service_sid`` (``MG`` + 32 hex
    digits; SMS only, calls always need ``from``), ``language`` of the calls'
    text-to-speech (default ``pt-BR``), optional ``voice`` (``Polly.Camila``…).
    secrets: ``auth_token`` (authenticates the API calls and signs the callbacks).
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"unknown Twilio option {unknown[0]!r}", field=f"options.{unknown[0]}")
    clean: dict[str, Any] = {}
    account = str(options.get("account_sid") or "").strip()
    if not account:
        raise InvalidInput("the Twilio account_sid is missing", field="options.account_sid")
    if not _ACCOUNT_SID.match(account):
        raise InvalidInput(
            f"account_sid must be AC followed by 32 hexadecimal digits, not {account!r}",
            field="options.account_sid",
        )
    clean["account_sid"] = account
    sender = str(options.get("from") or "").strip()
    service = str(options.get("messaging_service_sid") or "").strip()
    if not sender and not service:
        raise InvalidInput(
            "a sender is missing: give from (a Twilio number) or messaging_service_sid",
            field="options.from",
        )
    if sender:
        clean["from"] = e164(sender, "options.from")
    if service:
        if not _SERVICE_SID.match(service):
            raise InvalidInput(
                f"messaging_service_sid must be MG followed by 32 hexadecimal digits, not {service!r}",
                field="options.messaging_service_sid",
            )
        clean["messaging_service_sid"] = service
    language = str(options.get("language") or DEFAULT_LANGUAGE).strip()
    if not _LANGUAGE.match(language):
        raise InvalidInput(
            f"language must be a code such as pt-BR, not {language!r}", field="options.language"
        )
    clean["language"] = language
    voice = str(options.get("voice") or "").strip()
    if voice:
        if not _VOICE.match(voice):
            raise InvalidInput(
                f"voice must be a Twilio voice name such as Polly.Camila, not {voice!r}",
                field="options.voice",
            )
        clean["voice"] = voice
    token = str(secrets.get("auth_token") or "").strip()
    if not token:
        raise InvalidInput("the Twilio auth_token is missing", field="secrets.auth_token")
    if not _AUTH_TOKEN.match(token):
        raise InvalidInput(
            "auth_token must be the 32 hexadecimal digits of the account's Auth Token",
            field="secrets.auth_token",
        )
    return clean, {"auth_token": token}


def describe_twilio(options: dict[str, Any], secrets: dict[str, Any]) -> str:
    """The settings in one line, no secret shown: ``from +5511… (account AC12…cdef), token ****``."""
    senders = []
    if options.get("from"):
        senders.append(f"from {options['from']}")
    if options.get("messaging_service_sid"):
        senders.append(f"messaging service {options['messaging_service_sid']}")
    account = str(options.get("account_sid") or "")
    line = " and ".join(senders) or "no sender"
    line += f" (account {account[:6]}…{account[-4:]}, calls in {options.get('language')}"
    if options.get("voice"):
        line += f", voice {options['voice']}"
    return line + f"), token {'****' if secrets.get('auth_token') else 'missing'}"
