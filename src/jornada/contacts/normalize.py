"""Pure normalisation of the values that identify and reach a contact."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as phone_timezone

from jornada.events.canonical import CHANNELS, PURPOSES

DEFAULT_REGION = "BR"

#: IANA zone of each Brazilian state (UF); states not listed follow Brasília time.
BR_STATE_TIMEZONES: dict[str, str] = {
    "AC": "America/Rio_Branco",
    "AM": "America/Manaus",
    "RR": "America/Boa_Vista",
    "RO": "America/Porto_Velho",
    "MT": "America/Cuiaba",
    "MS": "America/Campo_Grande",
    "PA": "America/Belem",
    "AP": "America/Belem",
    "TO": "America/Araguaina",
    "MA": "America/Fortaleza",
    "PI": "America/Fortaleza",
    "CE": "America/Fortaleza",
    "RN": "America/Fortaleza",
    "PB": "America/Fortaleza",
    "PE": "America/Recife",
    "AL": "America/Maceio",
    "SE": "America/Maceio",
    "BA": "America/Bahia",
    "SP": "America/Sao_Paulo",
    "RJ": "America/Sao_Paulo",
    "MG": "America/Sao_Paulo",
    "ES": "America/Sao_Paulo",
    "PR": "America/Sao_Paulo",
    "SC": "America/Sao_Paulo",
    "RS": "America/Sao_Paulo",
    "GO": "America/Sao_Paulo",
    "DF": "America/Sao_Paulo",
}


class InvalidValue(ValueError):
    """A value that cannot be normalised; the message says why."""


@lru_cache(maxsize=65536)
def normalize_email(raw: str) -> str:
    """Lower-cased, syntax-checked address (no DNS look-up: ingestion must not wait on the network)."""
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidValue(f"{raw!r} is not a valid email address: {exc}") from exc
    return result.normalized.lower()


@lru_cache(maxsize=65536)
def normalize_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form (``+5511987654321``); numbers without a country code are read as Brazilian."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1024)
def check_timezone(name: str) -> str:
    """The IANA name itself if it is a known zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidValue(f"{name!r} is not an IANA time zone such as America/Sao_Paulo") from exc
    return name


@lru_cache(maxsize=65536)
def timezone_from_phone(e164: str) -> str | None:
    """The zone of a phone number's area, when it names exactly one zone."""
    zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164))
    real = [z for z in zones if z != phone_timezone.UNKNOWN_TIMEZONE]
    return real[0] if len(real) == 1 else None


def timezone_from_state(state: object, country: object) -> str | None:
    """The zone of a Brazilian state code, when the contact is (or may be) in Brazil."""
    if not isinstance(state, str) or country not in (None, "BR", "br", "Brasil", "Brazil"):
        return None
    return BR_STATE_TIMEZONES.get(state.strip().upper())


def parse_consent(raw: object) -> dict[str, bool]:
    """``{"email_marketing": true, …}`` checked against the known channels and purposes."""
    if not isinstance(raw, dict):
        raise InvalidValue('must be an object such as {"email_marketing": true}')
    consent: dict[str, bool] = {}
    for key, granted in raw.items():
        channel, _, purpose = str(key).partition("_")
        if channel not in CHANNELS or purpose not in PURPOSES:
            raise InvalidValue(
                f"unknown consent {key!r}: keys are <channel>_<purpose> with channel in "
                f"{', '.join(CHANNELS)} and purpose in {', '.join(PURPOSES)}"
            )
        if not isinstance(granted, bool):
            raise InvalidValue(f"consent {key!r} must be true or false, not {granted!r}")
        consent[key] = granted
    return consent
