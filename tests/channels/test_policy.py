"""The policy gate: suppression list, consent, quiet hours, WhatsApp window, smart sending, caps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.channels.history import suppress
from jornada.channels.models import Message, Suppression
from jornada.channels.policy import (
    CONSENT_CHANNEL,
    DAY,
    DEFAULT_CAPS,
    INTRUSIVE,
    WEEK,
    Allow,
    Defer,
    History,
    Recipient,
    Sent,
    Suppress,
    gate,
)
from jornada.contacts import Contact
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.flows import install
from jornada.outbox import OutboxItem
from tests.conftest import Shop
from tests.flows.test_runner import CART, T0, checkout, customer, send, setup, ticks

NOON = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)  # Tuesday 12:00 in São Paulo
ALL_CONSENT = {
    f"{c}_{p}": True for c in CONSENT_CHANNEL.values() for p in ("marketing", "transactional")
}
ANA = Recipient("ana@loja.com", "+5511987654321", "America/Sao_Paulo", ALL_CONSENT, "c1")


def sent(channel: str, hours_ago: float, template: str = "t") -> Sent:
    return Sent(channel, template, NOON - timedelta(hours=hours_ago))


class TestSuppressionList:
    def test_a_listed_address_gets_nothing_whatever_the_purpose(self) -> None:
        """The reason of the entry is the reason of the refusal."""
        history = History(suppressed={("email", "ana@loja.com"): "hard_bounce"})
        for purpose in ("marketing", "transactional"):
            verdict = gate("email", purpose, ANA, NOON, history=history)
            assert verdict == Suppress("suppressed: hard_bounce")

    def test_addresses_compare_without_case_and_per_channel(self) -> None:
        shouty = Recipient("Ana@Loja.COM", ANA.phone, ANA.timezone, ALL_CONSENT)
        history = History(suppressed={("email", "ana@loja.com"): "complaint"})
        assert gate("email", "marketing", shouty, NOON, history=history) == Suppress(
            "suppressed: complaint"
        )
        assert gate("sms", "marketing", shouty, NOON, history=history) == Allow()

    def test_stop_on_sms_leaves_whatsapp_alone(self) -> None:
        history = History(suppressed={("sms", ANA.phone or ""): "stop"})
        assert gate("sms", "transactional", ANA, NOON, history=history) == Suppress(
            "suppressed: stop"
        )
        assert gate("whatsapp", "transactional", ANA, NOON, history=history) == Allow()


class TestFrequencyCaps:
    def test_the_daily_cap_counts_the_last_24_hours(self) -> None:
        """Email: 2 a day; the third is suppressed until the first is 24 h old."""
        full = History(sent=(sent("email", 23, "a"), sent("email", 1, "b")))
        assert gate("email", "marketing", ANA, NOON, history=full) == Suppress(
            "frequency cap: 2 email per day"
        )
        older = History(sent=(sent("email", 24, "a"), sent("email", 1, "b")))
        assert gate("email", "marketing", ANA, NOON, history=older) == Allow()

    def test_the_weekly_cap_counts_the_last_7_days(self) -> None:
        week = History(sent=tuple(sent("email", 30 * n, f"t{n}") for n in range(1, 6)))
        assert gate("email", "marketing", ANA, NOON, history=week) == Suppress(
            "frequency cap: 5 email per week"
        )

    def test_caps_are_per_channel_and_for_marketing_only(self) -> None:
        history = History(sent=(sent("whatsapp", 2),))
        assert gate("whatsapp", "marketing", ANA, NOON, history=history) == Suppress(
            "frequency cap: 1 whatsapp per day"
        )
        assert gate("whatsapp", "transactional", ANA, NOON, history=history) == Allow()
        assert gate("email", "marketing", ANA, NOON, history=history) == Allow()


class TestSmartSending:
    def test_the_same_template_waits_16_hours(self) -> None:
        history = History(sent=(sent("push", 15, "cupom"),))
        assert gate("push", "marketing", ANA, NOON, template="cupom", history=history) == Suppress(
            "smart sending: cupom already sent in the last 16 h"
        )
        assert gate("push", "marketing", ANA, NOON, template="outro", history=history) == Allow()
        later = History(sent=(sent("push", 16, "cupom"),))
        assert gate("push", "marketing", ANA, NOON, template="cupom", history=later) == Allow()

    def test_transactional_messages_repeat_freely(self) -> None:
        history = History(sent=(sent("email", 1, "order-shipped"),))
        verdict = gate(
            "email", "transactional", ANA, NOON, template="order-shipped", history=history
        )
        assert verdict == Allow()


class TestWhatsAppWindow:
    OUTSIDE = Suppress("whatsapp: outside the 24-hour window and the template is not approved")

    def test_unapproved_template_only_within_24_hours_of_a_reply(self) -> None:
        def verdict(replied_hours_ago: float | None) -> object:
            replied = (
                None if replied_hours_ago is None else NOON - timedelta(hours=replied_hours_ago)
            )
            history = History(whatsapp_replied_at=replied)
            return gate("whatsapp", "transactional", ANA, NOON, approved=False, history=history)

        assert verdict(None) == self.OUTSIDE
        assert verdict(25) == self.OUTSIDE
        assert verdict(24) == self.OUTSIDE
        assert verdict(23.9) == Allow()

    def test_an_approved_template_goes_any_time(self) -> None:
        assert gate("whatsapp", "transactional", ANA, NOON, approved=True) == Allow()

    def test_other_channels_ignore_approval(self) -> None:
        assert gate("sms", "transactional", ANA, NOON, approved=False) == Allow()


class TestQuietHours:
    def test_a_flow_window_replaces_the_default(self) -> None:
        """Quiet from 18:00 to 09:00 (a flow sending 09:00-18:00): 19:00 local waits for 09:00."""
        evening = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)  # 19:00 in São Paulo
        verdict = gate("sms", "transactional", ANA, evening, ("18:00", "09:00"))
        assert verdict == Defer(datetime(2026, 11, 4, 12, 0, tzinfo=UTC), "quiet hours")
        assert gate("email", "transactional", ANA, evening, ("18:00", "09:00")) == Allow()


# -- properties ---------------------------------------------------------------------------
CHANNELS = sorted(CONSENT_CHANNEL)
ZONES = ["America/Sao_Paulo", "America/Manaus", "America/Noronha", "UTC", "Asia/Tokyo"]
moments = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001 - the zone comes from `timezones`
    timezones=st.just(UTC),
)
consents = st.dictionaries(
    st.sampled_from(
        [f"{c}_{p}" for c in CONSENT_CHANNEL.values() for p in ("marketing", "transactional")]
    ),
    st.booleans(),
)
recipients = st.builds(
    Recipient,
    email=st.none() | st.just("ana@loja.com"),
    phone=st.none() | st.just("+5511987654321"),
    timezone=st.sampled_from(ZONES),
    consent=consents,
    contact_id=st.just("c1"),
)
histories = st.builds(
    History,
    sent=st.lists(
        st.builds(
            Sent,
            channel=st.sampled_from(CHANNELS),
            template=st.sampled_from(["a", "b", "c"]),
            at=moments,
        ),
        max_size=12,
    ).map(tuple),
    whatsapp_replied_at=st.none() | moments,
)


@settings(max_examples=300, deadline=None)
@given(
    channel=st.sampled_from(CHANNELS),
    purpose=st.sampled_from(["marketing", "transactional"]),
    recipient=recipients,
    now=moments,
    history=histories,
    template=st.sampled_from(["a", "b", "c"]),
    approved=st.booleans(),
)
def test_no_marketing_message_without_marketing_consent(
    channel: str,
    purpose: str,
    recipient: Recipient,
    now: datetime,
    history: History,
    template: str,
    approved: bool,
) -> None:
    verdict = gate(
        channel, purpose, recipient, now, template=template, approved=approved, history=history
    )
    if isinstance(verdict, Allow) and purpose == "marketing":
        assert recipient.consent.get(f"{CONSENT_CHANNEL[channel]}_marketing") is True


@settings(max_examples=300, deadline=None)
@given(
    channel=st.sampled_from(sorted(INTRUSIVE)),
    purpose=st.sampled_from(["marketing", "transactional"]),
    recipient=recipients,
    now=moments,
    history=histories,
)
def test_no_sms_whatsapp_or_voice_in_quiet_hours(
    channel: str, purpose: str, recipient: Recipient, now: datetime, history: History
) -> None:
    """Checked against the local clock directly: allowed only from 08:00 to 19:59."""
    verdict = gate(channel, purpose, recipient, now, history=history, approved=True)
    local = now.astimezone(ZoneInfo(recipient.timezone))
    if isinstance(verdict, Allow):
        assert 8 <= local.hour < 20
    if isinstance(verdict, Defer):
        assert verdict.until > now
        assert verdict.until.astimezone(ZoneInfo(recipient.timezone)).hour == 8


requests = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=36 * 60),  # minutes after the previous request
        st.sampled_from(CHANNELS),
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["marketing", "marketing", "transactional"]),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    earlier=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=14 * 24 * 60),
            st.sampled_from(CHANNELS),
            st.sampled_from(["a", "b", "c", "d"]),
        ),
        max_size=20,
    ),
    requests=requests,
    zone=st.sampled_from(ZONES),
)
def test_caps_are_never_exceeded(
    earlier: list[tuple[int, str, str]], requests: list[tuple[int, str, str, str]], zone: str
) -> None:
    """Each marketing message allowed is added to the history; no window ever holds more than the cap."""
    start = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    recipient = Recipient("ana@loja.com", "+5511987654321", zone, ALL_CONSENT, "c1")
    sent_before = [Sent(c, t, start - timedelta(minutes=m)) for m, c, t in earlier]
    allowed: list[Sent] = []
    now = start
    for minutes, channel, template, purpose in requests:
        now += timedelta(minutes=minutes)
        history = History(sent=tuple(sent_before + allowed))
        verdict = gate(
            channel, purpose, recipient, now, template=template, approved=True, history=history
        )
        if isinstance(verdict, Allow) and purpose == "marketing":
            allowed.append(Sent(channel, template, now))
    everything = sent_before + allowed
    for new in allowed:
        cap = DEFAULT_CAPS[new.channel]
        same = [s for s in everything if s.channel == new.channel and s.at <= new.at]
        assert sum(1 for s in same if new.at - s.at < DAY) <= cap.day
        assert sum(1 for s in same if new.at - s.at < WEEK) <= cap.week
        assert not any(
            s.template == new.template and timedelta(0) < new.at - s.at < timedelta(hours=16)
            for s in same
        )


# -- the suppression list and the whole path ----------------------------------------------
def test_suppress_lists_an_address_once_with_the_latest_reason(
    database: Database, shop: Shop
) -> None:
    with database.write() as session:
        suppress(session, shop.ref.id, "email", " Ana@Loja.com ", "hard_bounce", T0)
        suppress(session, shop.ref.id, "email", "ana@loja.com", "complaint", T0 + DAY)
    with database.read() as session:
        rows = session.scalars(select(Suppression)).all()
        assert [(r.channel, r.address, r.reason, r.created_at) for r in rows] == [
            ("email", "ana@loja.com", "complaint", T0)
        ]
    with database.write() as session, pytest.raises(InvalidInput):
        suppress(session, shop.ref.id, "email", "ana@loja.com", "bored", T0)


def test_a_suppressed_address_gets_nothing_through_the_scheduler(
    database: Database, shop: Shop
) -> None:
    """Cart abandonment with a bounced e-mail: the WhatsApp goes, the e-mail is refused with why."""
    setup(database, shop)
    with database.write() as session:
        suppress(session, shop.ref.id, "email", "ana@loja.com", "hard_bounce", T0)
    send(database, shop, T0 - timedelta(minutes=5), customer())
    send(database, shop, T0, checkout())
    ticks(database, T0 + timedelta(hours=1))
    with database.read() as session:
        items = session.scalars(
            select(OutboxItem).where(OutboxItem.workspace_id == shop.ref.id).order_by(OutboxItem.id)
        ).all()
        assert [(i.channel, i.status) for i in items[:2]] == [
            ("email", "suppressed"),
            ("whatsapp", "done"),
        ]
        assert items[0].reason == "suppressed: hard_bounce"
        assert [m.channel for m in session.scalars(select(Message))] == ["whatsapp"]


def _due(shop: Shop, contact_id: str, key: str, **payload: object) -> OutboxItem:
    return OutboxItem(
        workspace_id=shop.ref.id,
        contact_id=contact_id,
        kind="send",
        channel=str(payload.pop("channel")),
        payload=dict(payload),
        idempotency_key=key,
        due_at=T0,
        created_at=T0,
    )


def test_sends_earlier_in_the_same_batch_count_towards_the_cap(
    database: Database, shop: Shop
) -> None:
    """Two WhatsApp marketing messages due together: the second is over the 1-a-day cap."""
    send(database, shop, T0 - timedelta(minutes=5), customer())
    with database.write() as session:
        (ana,) = session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id))
        for n, template in enumerate(["cart-abandonment-whatsapp", "reactivation-voice-note"]):
            session.add(
                _due(
                    shop,
                    ana.id,
                    f"k{n}",
                    channel="whatsapp",
                    template=template,
                    purpose="marketing",
                )
            )
    ticks(database, T0)
    with database.read() as session:
        items = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        assert [i.status for i in items] == ["done", "suppressed"]
        assert items[1].reason == "frequency cap: 1 whatsapp per day"


def test_a_flows_quiet_hours_replace_the_default(database: Database, shop: Shop) -> None:
    """A flow sending 09:00-18:00: its WhatsApp due at 19:00 local waits for 09:00 next day."""
    evening = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)  # 19:00 in São Paulo
    with database.write() as session:
        install(
            session,
            shop.ref.id,
            CART.model_copy(update={"quiet_hours": ("09:00", "18:00")}),
            now=T0,
        )
    send(database, shop, T0 - timedelta(minutes=5), customer())
    with database.write() as session:
        (ana,) = session.scalars(select(Contact).where(Contact.workspace_id == shop.ref.id))
        item = _due(
            shop,
            ana.id,
            "k",
            channel="whatsapp",
            template="cart-abandonment-whatsapp",
            purpose="marketing",
            flow="cart-abandonment",
        )
        item.due_at = evening
        session.add(item)
    ticks(database, evening)
    with database.read() as session:
        (item,) = session.scalars(select(OutboxItem))
        assert (item.status, item.reason, item.due_at) == (
            "pending",
            "quiet hours",
            datetime(2026, 11, 4, 12, 0, tzinfo=UTC),
        )
