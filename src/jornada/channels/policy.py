"""Pure: may this message go now? One gate every send passes.

``gate`` answers :class:`Allow`, :class:`Defer` (until a moment) or
:class:`Suppress` (with the reason, which is stored and shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

#: The consent a channel's messages need (voice calls reach the phone, like SMS).
CONSENT_CHANNEL = {
    "email": "email",
    "sms": "sms",
    "whatsapp": "whatsapp",
    "push": "push",
    "voice": "sms",
}
#: Channels that wake people up: they respect quiet hours.
INTRUSIVE = frozenset({"sms", "whatsapp", "voice"})
DEFAULT_QUIET_HOURS = ("20:00", "08:00")  # no intrusive message from 20:00 to 08:00 local


@dataclass(frozen=True)
class Allow:
    pass


@dataclass(frozen=True)
class Defer:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Suppress:
    reason: str


Verdict = Allow | Defer | Suppress


@dataclass(frozen=True)
class Recipient:
    """What the gate needs to know about the contact."""

    email: str | None
    phone: str | None
    timezone: str
    consent: dict[str, bool]


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, zone: str, quiet: tuple[str, str]) -> datetime | None:
    """When quiet hours end, if ``now`` is inside them in ``zone``; else None."""
    start, end = _hhmm(quiet[0]), _hhmm(quiet[1])
    local = now.astimezone(ZoneInfo(zone))
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=local.tzinfo).astimezone(now.tzinfo)


def gate(
    channel: str,
    purpose: str,
    recipient: Recipient,
    now: datetime,
    quiet: tuple[str, str] = DEFAULT_QUIET_HOURS,
) -> Verdict:
    """Consent, address and quiet hours, in that order."""
    consent_key = f"{CONSENT_CHANNEL.get(channel, channel)}_{purpose}"
    if channel in CONSENT_CHANNEL:
        if purpose == "marketing" and not recipient.consent.get(consent_key, False):
            return Suppress(f"no consent: {consent_key}")
        if purpose == "transactional" and recipient.consent.get(consent_key) is False:
            return Suppress(f"opted out: {consent_key}")
    if channel == "email" and not recipient.email:
        return Suppress("no email address")
    if channel in ("sms", "whatsapp", "voice") and not recipient.phone:
        return Suppress("no phone number")
    if channel in INTRUSIVE and (until := quiet_until(now, recipient.timezone, quiet)):
        return Defer(until, "quiet hours")
    return Allow()
