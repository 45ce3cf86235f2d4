"""Pure: may this message go now? One gate every send passes.

``gate`` answers :class:`Allow`, :class:`Defer` (until a moment) or
:class:`Suppress` (with the reason, which is stored and shown). What it needs
to know about the past (messages sent, suppressed addresses, the last WhatsApp
reply) comes in a :class:`History` the caller reads once per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
#: Why an address is on the suppression list.
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "stop", "erased", "manual")
#: Smart sending: the same marketing template reaches a contact at most once in this window.
SMART_SENDING_WINDOW = timedelta(hours=16)
#: WhatsApp's customer-service window: free-form messages only this long after the contact wrote.
WHATSAPP_WINDOW = timedelta(hours=24)
DAY, WEEK = timedelta(days=1), timedelta(days=7)  # the caps' rolling windows


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
class Cap:
    """At most ``day`` marketing messages on a channel in any 24 hours, ``week`` in any 7 days."""

    day: int
    week: int


#: Frequency caps per channel, across flows, for marketing messages (transactional ones are free).
DEFAULT_CAPS: Mapping[str, Cap] = {
    "email": Cap(day=2, week=5),
    "whatsapp": Cap(day=1, week=3),
    "sms": Cap(day=1, week=2),
    "voice": Cap(day=1, week=2),
    "push": Cap(day=3, week=10),
}


@dataclass(frozen=True)
class SendingSettings:
    """A workspace's gate settings; a flow's own quiet hours win over ``quiet``.

    ``quiet``: the quiet period (start, end) as ``HH:MM`` in the contact's time
    zone (equal ends: none); ``caps``: the marketing frequency caps per channel
    (a channel missing here has none); ``smart_window``: how long the same
    marketing template is kept from reaching a contact again.
    """

    quiet: tuple[str, str] = DEFAULT_QUIET_HOURS
    caps: Mapping[str, Cap] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    smart_window: timedelta = SMART_SENDING_WINDOW


#: What a workspace that set nothing gets.
DEFAULT_SENDING = SendingSettings()


@dataclass(frozen=True)
class Recipient:
    """What the gate needs to know about the contact.

    ``contact_id`` is the push "address" (push goes to the contact's subscriptions).
    """

    email: str | None
    phone: str | None
    timezone: str
    consent: dict[str, bool]
    contact_id: str | None = None


@dataclass(frozen=True)
class Sent:
    """A marketing message the contact already got (from the messages table or this batch)."""

    channel: str
    template: str
    at: datetime


@dataclass(frozen=True)
class History:
    """The contact's past as far as the gate cares.

    ``sent``: their marketing messages of the last week; ``suppressed``: the
    workspace's suppression list entries for this contact's addresses, keyed
    ``(channel, address)`` with the reason; ``whatsapp_replied_at``: their last
    inbound WhatsApp message, if any.
    """

    sent: tuple[Sent, ...] = ()
    suppressed: Mapping[tuple[str, str], str] = field(default_factory=dict)
    whatsapp_replied_at: datetime | None = None


NO_HISTORY = History()


def normal_address(channel: str, address: str) -> str:
    """The form addresses are compared in: e-mail case-folded, every address trimmed."""
    address = address.strip()
    return address.lower() if channel == "email" else address


def address(channel: str, recipient: Recipient) -> str | None:
    """Where a message on ``channel`` goes: the e-mail, the phone or (push) the contact."""
    if channel == "email":
        return recipient.email
    if channel in ("sms", "whatsapp", "voice"):
        return recipient.phone
    return recipient.contact_id


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
    *,
    template: str | None = None,
    approved: bool = True,
    history: History = NO_HISTORY,
    caps: Mapping[str, Cap] = DEFAULT_CAPS,
    smart_window: timedelta = SMART_SENDING_WINDOW,
) -> Verdict:
    """Suppression list, consent, address, quiet hours, WhatsApp window, smart sending, caps.

    In that order, so a refusal names the most lasting cause. Quiet hours come
    before the rules that depend on the moment, which are checked again when a
    deferred message comes back. ``approved``: whether ``template`` is a
    WhatsApp template registered with (and approved by) Meta.
    """
    to = address(channel, recipient)
    if to and (listed := history.suppressed.get((channel, normal_address(channel, to)))):
        return Suppress(f"suppressed: {listed}")
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
    if channel == "whatsapp" and not approved and not _in_whatsapp_window(history, now):
        return Suppress("whatsapp: outside the 24-hour window and the template is not approved")
    if purpose == "marketing":
        return _marketing_limits(channel, template, history, now, caps, smart_window)
    return Allow()


def _in_whatsapp_window(history: History, now: datetime) -> bool:
    replied = history.whatsapp_replied_at
    return replied is not None and now - replied < WHATSAPP_WINDOW


def _marketing_limits(
    channel: str,
    template: str | None,
    history: History,
    now: datetime,
    caps: Mapping[str, Cap],
    smart_window: timedelta,
) -> Verdict:
    """Smart sending, then the channel's daily and weekly caps (rolling windows)."""
    on_channel = [s for s in history.sent if s.channel == channel]
    if template is not None and any(
        s.template == template and now - s.at < smart_window for s in on_channel
    ):
        hours = smart_window / timedelta(hours=1)
        return Suppress(f"smart sending: {template} already sent in the last {hours:g} h")
    cap = caps.get(channel)
    if cap is None:
        return Allow()
    if sum(1 for s in on_channel if now - s.at < DAY) >= cap.day:
        return Suppress(f"frequency cap: {cap.day} {channel} per day")
    if sum(1 for s in on_channel if now - s.at < WEEK) >= cap.week:
        return Suppress(f"frequency cap: {cap.week} {channel} per week")
    return Allow()
