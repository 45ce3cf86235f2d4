"""Per-workspace gate settings (quiet hours, caps, smart sending) and per-provider limits."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData

from jornada.channels.models import Message, SendingSettingsRow
from jornada.channels.pacing import (
    NS,
    PACED_PASS,
    Pacer,
    Pacers,
    claim_budget,
    day_bounds,
    interval_ns,
    next_slot,
)
from jornada.channels.policy import (
    CONSENT_CHANNEL,
    DAY,
    DEFAULT_SENDING,
    INTRUSIVE,
    WEEK,
    Allow,
    Cap,
    Defer,
    History,
    Recipient,
    SendingSettings,
    Sent,
    Suppress,
    gate,
    quiet_until,
)
from jornada.channels.providers import get_provider, set_provider
from jornada.channels.providers.settings import set_limits
from jornada.channels.sending import get_sending_settings, set_sending_settings
from jornada.channels.timeline import contact_messages
from jornada.db import Database
from jornada.errors import InvalidInput
from jornada.flows import install
from jornada.ingest import accept_messages
from jornada.metrics.queries import flow_stats
from jornada.outbox import enqueue
from jornada.scheduler import Courier, deliver_due, dispatch_due, tick
from jornada.workspaces import Workspace
from tests.channels.conftest import (
    KEYS,
    PUBLIC_URL,
    courier,
    customer,
    enqueue_email,
    messages,
    outbox,
    use_smtp,
)
from tests.conftest import NOW, Shop
from tests.flows.test_runner import CART
from tests.support.server import LiveServer
from tests.support.smtp import SmtpServer
from tests.test_cli import jornada

T0 = datetime(2026, 11, 3, 13, 0, tzinfo=UTC)  # a Tuesday, 10:00 in São Paulo
ZONES = ("America/Sao_Paulo", "America/Manaus", "Europe/Lisbon", "Asia/Tokyo", "UTC")
EVERYONE = {
    f"{c}_{p}": True for c in CONSENT_CHANNEL.values() for p in ("marketing", "transactional")
}

# -- strategies ------------------------------------------------------------------------------
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
caps = st.builds(
    lambda day, extra: Cap(day=day, week=day + extra), st.integers(0, 5), st.integers(0, 10)
)
workspace_settings = st.builds(
    SendingSettings,
    quiet=st.tuples(hhmm, hhmm),
    caps=st.fixed_dictionaries(dict.fromkeys(CONSENT_CHANNEL, caps)),
    smart_window=st.integers(0, 7 * 24 * 60).map(lambda m: timedelta(minutes=m)),
)
moments = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001 - with timezones given
    timezones=st.just(UTC),
)


def _inside(local: time, quiet: tuple[str, str]) -> bool:
    """The quiet period as a person reads it: from start (inclusive) to end, across midnight."""
    start, end = (time.fromisoformat(q) for q in quiet)
    if start == end:
        return False
    return start <= local < end if start < end else (local >= start or local < end)


class TestGateWithWorkspaceSettings:
    @settings(max_examples=300, deadline=None)
    @given(
        ws=workspace_settings,
        now=moments,
        zone=st.sampled_from(ZONES),
        channel=st.sampled_from(sorted(INTRUSIVE)),
        purpose=st.sampled_from(["marketing", "transactional"]),
    )
    def test_no_sms_whatsapp_or_voice_inside_the_workspaces_quiet_hours(
        self, ws: SendingSettings, now: datetime, zone: str, channel: str, purpose: str
    ) -> None:
        """Inside the configured period: deferred to its end, which is outside it; else not deferred."""
        person = Recipient("a@b.c", "+5511987654321", zone, EVERYONE, "c1")
        verdict = gate(
            channel, purpose, person, now, ws.quiet, caps=ws.caps, smart_window=ws.smart_window
        )
        local = now.astimezone(ZoneInfo(zone))
        if _inside(local.time(), ws.quiet):
            assert isinstance(verdict, Defer)
            assert verdict.until > now
            assert verdict.until - now <= timedelta(days=1)
            assert quiet_until(verdict.until, zone, ws.quiet) is None
        else:
            assert not isinstance(verdict, Defer)

    @settings(max_examples=200, deadline=None)
    @given(
        ws=workspace_settings,
        gaps=st.lists(st.integers(1, 36 * 60), min_size=1, max_size=40),
        channel=st.sampled_from(sorted(CONSENT_CHANNEL)),
        templates=st.lists(st.sampled_from("abc"), min_size=40, max_size=40),
    )
    def test_the_workspaces_caps_are_never_exceeded(
        self, ws: SendingSettings, gaps: list[int], channel: str, templates: list[str]
    ) -> None:
        """Whatever comes, any 24 h and any 7 days hold at most the workspace's caps."""
        person = Recipient("a@b.c", "+5511987654321", "UTC", EVERYONE, "c1")
        quiet = ("00:00", "00:00")  # no quiet hours: only the caps and smart sending decide
        allowed: list[Sent] = []
        at = datetime(2026, 11, 2, tzinfo=UTC)
        for gap, template in zip(gaps, templates, strict=False):
            at += timedelta(minutes=gap)
            history = History(sent=tuple(allowed))
            verdict = gate(
                channel,
                "marketing",
                person,
                at,
                quiet,
                template=template,
                history=history,
                caps=ws.caps,
                smart_window=ws.smart_window,
            )
            if verdict == Allow():
                allowed.append(Sent(channel, template, at))
        cap = ws.caps[channel]
        for sent in allowed:
            assert sum(1 for s in allowed if timedelta(0) <= s.at - sent.at < DAY) <= cap.day
            assert sum(1 for s in allowed if timedelta(0) <= s.at - sent.at < WEEK) <= cap.week
            same = [s for s in allowed if s.template == sent.template and s is not sent]
            assert all(abs(s.at - sent.at) >= ws.smart_window for s in same)

    @settings(max_examples=200, deadline=None)
    @given(
        ws=workspace_settings,
        now=moments,
        channel=st.sampled_from(sorted(CONSENT_CHANNEL)),
        consent=st.dictionaries(
            st.sampled_from(sorted(EVERYONE)), st.booleans(), max_size=len(EVERYONE)
        ),
    )
    def test_no_marketing_without_marketing_consent_whatever_the_settings(
        self, ws: SendingSettings, now: datetime, channel: str, consent: dict[str, bool]
    ) -> None:
        """Settings never let marketing through without the channel's marketing consent."""
        person = Recipient("a@b.c", "+5511987654321", "America/Sao_Paulo", consent, "c1")
        verdict = gate(
            channel, "marketing", person, now, ws.quiet, caps=ws.caps, smart_window=ws.smart_window
        )
        if not consent.get(f"{CONSENT_CHANNEL[channel]}_marketing", False):
            assert verdict == Suppress(f"no consent: {CONSENT_CHANNEL[channel]}_marketing")


class TestPacing:
    @settings(max_examples=300, deadline=None)
    @given(
        rate=st.floats(0.05, 200, allow_nan=False),
        arrivals=st.lists(st.integers(0, 20 * NS), min_size=1, max_size=120),
        window_seconds=st.integers(1, 30),
        start=st.integers(0, 30 * NS),
    )
    def test_never_more_than_rate_times_seconds_in_any_window(
        self, rate: float, arrivals: list[int], window_seconds: int, start: int
    ) -> None:
        """Callers asking at any times (several connections at once) get slots that fit the rate."""
        interval, last, slots = interval_ns(rate), None, []
        for asked in sorted(arrivals):
            slot = next_slot(last, asked, interval)
            assert slot >= asked  # nobody goes before asking
            slots.append(slot)
            last = slot
        window = window_seconds * NS
        for a in [start, *slots]:  # the worst windows start at a slot
            inside = sum(1 for s in slots if a <= s < a + window)
            assert inside <= math.ceil(rate * window_seconds)

    @settings(max_examples=200, deadline=None)
    @given(
        cap=st.integers(1, 20),
        arrivals=st.lists(st.integers(0, 5 * 24 * 60), min_size=1, max_size=80),
        passes=st.lists(st.integers(1, 600), min_size=1, max_size=60),
        rate=st.none() | st.floats(0.01, 5),
        zone=st.sampled_from(ZONES),
    )
    def test_the_daily_cap_planner_never_lets_more_than_the_cap_through_a_day(
        self,
        cap: int,
        arrivals: list[int],
        passes: list[int],
        rate: float | None,
        zone: str,
    ) -> None:
        """Passes at random moments claim within the cap of the workspace's day; none is lost."""
        origin = datetime(2026, 11, 1, tzinfo=UTC)
        queue = sorted(origin + timedelta(minutes=m) for m in arrivals)  # due times
        sent: list[datetime] = []
        at = origin
        for gap in passes:
            at += timedelta(minutes=gap)
            day_start, next_day = day_bounds(at, zone)
            used = sum(1 for s in sent if s >= day_start)
            due = [d for d in queue if d <= at]
            take = claim_budget(limit=500, daily_cap=cap, used_today=used, rate_per_second=rate)
            for d in due[:take]:
                queue.remove(d)
                sent.append(at)
            if used + min(take, len(due)) >= cap:  # the rest wait for the next day
                queue = sorted(next_day if d <= at else d for d in queue)
        by_day = Counter(s.astimezone(ZoneInfo(zone)).date() for s in sent)
        assert all(n <= cap for n in by_day.values())
        assert len(sent) + len(queue) == len(arrivals)
        if rate is not None:
            assert max(Counter(sent).values(), default=0) <= max(
                1, math.floor(rate * PACED_PASS.seconds)
            )

    def test_day_bounds_follow_the_workspaces_calendar(self) -> None:
        """São Paulo's day starts at 03:00 UTC."""
        start, following = day_bounds(datetime(2026, 11, 3, 2, 59, tzinfo=UTC), "America/Sao_Paulo")
        assert start == datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
        assert following == datetime(2026, 11, 3, 3, 0, tzinfo=UTC)

    def test_four_connections_share_one_rate(self) -> None:
        """Threads calling at once get slots exactly one interval apart; sleeping is injected."""
        # given a clock that only moves when someone sleeps
        clock = FakeClock()
        pacer = Pacer(10, clock=clock.now, sleep=clock.sleep)  # 10/s: 100 ms apart
        slots: list[int] = []
        lock = threading.Lock()

        def connection() -> None:
            for _ in range(25):
                slot = pacer.wait()
                with lock:
                    slots.append(slot)

        # when
        threads = [threading.Thread(target=connection) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # then
        ordered = sorted(slots)
        assert len(ordered) == 100
        assert all(b - a >= NS // 10 for a, b in itertools.pairwise(ordered))
        assert clock.slept > 0

    def test_the_first_send_does_not_wait_and_the_next_waits_its_interval(self) -> None:
        """An idle pacer lets the first send go at once; the second sleeps 1/rate."""
        clock = FakeClock()
        pacer = Pacer(4, clock=clock.now, sleep=clock.sleep)
        assert pacer.wait() == 0
        assert pacer.wait() == NS // 4
        assert clock.sleeps == [0.25]

    def test_pacers_are_kept_per_group_and_renewed_when_the_rate_changes(self) -> None:
        """One pacer per (workspace, channel) across passes; none without a rate."""
        pacers = Pacers()
        first = pacers.get(("w", "email"), 5.0)
        assert pacers.get(("w", "email"), 5.0) is first
        assert pacers.get(("w", "email"), 6.0) is not first
        assert pacers.get(("w", "sms"), None) is None


class FakeClock:
    """Nanoseconds that advance only by ``sleep``; thread-safe."""

    def __init__(self) -> None:
        self._now = 0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> int:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += round(seconds * NS)

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


# -- storage -----------------------------------------------------------------------------------
class TestSettingsStore:
    def test_a_workspace_without_settings_has_the_defaults(
        self, database: Database, shop: Shop
    ) -> None:
        """No row: policy.DEFAULT_SENDING."""
        with database.read() as session:
            assert get_sending_settings(session, shop.ref.id) == DEFAULT_SENDING

    def test_changes_keep_what_is_not_given(self, database: Database, shop: Shop) -> None:
        """Each change takes the fields given; a cap's other period keeps its value."""
        with database.write() as session:
            set_sending_settings(session, shop.ref.id, quiet=("21:30", "09:00"), now=NOW)
            set_sending_settings(
                session,
                shop.ref.id,
                caps={"email": {"day": 1}, "sms": {"day": 0, "week": 0}},
                smart_window=timedelta(hours=4),
                now=NOW,
            )
        with database.read() as session:
            stored = get_sending_settings(session, shop.ref.id)
        assert stored.quiet == ("21:30", "09:00")
        assert stored.caps["email"] == Cap(day=1, week=5)  # the week kept its default
        assert stored.caps["sms"] == Cap(day=0, week=0)
        assert stored.caps["push"] == Cap(day=3, week=10)
        assert stored.smart_window == timedelta(hours=4)

    @pytest.mark.parametrize(
        ("_case", "change", "field"),
        [
            ("hour 25", {"quiet": ("25:00", "08:00")}, "quiet_hours.start"),
            ("no colon", {"quiet": ("20:00", "8h")}, "quiet_hours.end"),
            ("unknown channel", {"caps": {"fax": {"day": 1}}}, "caps.fax"),
            ("negative", {"caps": {"email": {"day": -1}}}, "caps.email.day"),
            ("week under day", {"caps": {"email": {"day": 4, "week": 3}}}, "caps.email.week"),
            ("month", {"caps": {"email": {"month": 4}}}, "caps.email.month"),
            ("window too long", {"smart_window": timedelta(days=8)}, "smart_window_hours"),
        ],
    )
    def test_bad_settings_name_the_field_and_change_nothing(
        self, database: Database, shop: Shop, _case: str, change: dict[str, Any], field: str
    ) -> None:
        """A refused value names its field; the stored settings stay as they were."""
        with database.write() as session:
            with pytest.raises(InvalidInput) as error:
                set_sending_settings(session, shop.ref.id, now=NOW, **change)
            assert error.value.field == field
            assert get_sending_settings(session, shop.ref.id) == DEFAULT_SENDING


# -- the gate as dispatch calls it -----------------------------------------------------------------
def _enqueue(database: Database, shop: Shop, contact: str, channel: str, template: str) -> None:
    with database.write() as session:
        enqueue(
            session,
            workspace_id=shop.ref.id,
            contact_id=contact,
            kind="send",
            channel=channel,
            idempotency_key=f"t:{channel}:{template}",
            payload={"template": template, "purpose": "marketing"},
            now=T0,
        )


def test_dispatch_reads_the_workspaces_quiet_hours_and_caps(database: Database, shop: Shop) -> None:
    """10:00 in São Paulo is inside a 09:00-11:00 quiet period; a cap of 1 e-mail holds the second."""
    # given
    ana = customer(database, shop, T0)
    identify = {
        "type": "identify",
        "userId": "ana",
        "timestamp": (T0 - DAY).isoformat(),
        "traits": {"phone": "+5511987654321", "consent": {"whatsapp_marketing": True}},
    }
    assert accept_messages(database, shop.ref, [identify], received_at=T0 - DAY).rejected == []
    with database.write() as session:
        set_sending_settings(
            session,
            shop.ref.id,
            quiet=("09:00", "11:00"),
            caps={"email": {"day": 1}},
            now=T0,
        )
    _enqueue(database, shop, ana, "email", "nurture-casos")
    _enqueue(database, shop, ana, "email", "welcome-brand-story")
    _enqueue(database, shop, ana, "whatsapp", "nps-survey")
    # when
    dispatch_due(database, T0)
    # then
    assert outbox(database, shop) == [
        ("done", "fell back on shop.url"),  # the shop has no URL: sent all the same
        ("suppressed", "frequency cap: 1 email per day"),
        ("pending", "quiet hours"),
    ]
    with database.read() as session:
        shown = contact_messages(session, shop.ref.id, ana)[0]
    assert [(m["channel"], m["status"], m["reason"], m["until"]) for m in shown] == [
        ("whatsapp", "deferred", "quiet hours", datetime(2026, 11, 3, 14, 0, tzinfo=UTC)),
        ("email", "suppressed", "frequency cap: 1 email per day", None),
        ("email", "sent", None, None),
    ]


# -- provider limits -------------------------------------------------------------------------------
class TestProviderLimits:
    def test_every_kind_takes_a_rate_and_a_daily_cap(self, database: Database, shop: Shop) -> None:
        """Both limits are stored among the options and shown in the summary; set_limits keeps the rest."""
        with database.write() as session:
            config = set_provider(
                session,
                shop.ref.id,
                "email",
                options={
                    "host": "smtp.loja.test",
                    "from": "loja@loja.test",
                    "rate_per_second": 12.5,
                    "daily_cap": 1000,
                },
                now=NOW,
                keys=KEYS,
            )
        assert (config.rate_per_second, config.daily_cap) == (12.5, 1000)
        assert config.view()["summary"].endswith(", at most 12.5/s, 1000 a day")
        with database.write() as session:
            changed = set_limits(
                session, shop.ref.id, "email", rate_per_second=None, daily_cap=3, now=NOW, keys=KEYS
            )
            assert (changed.rate_per_second, changed.daily_cap) == (None, 3)
            assert changed.options["host"] == "smtp.loja.test"

    @pytest.mark.parametrize(
        ("_case", "limits", "field"),
        [
            ("zero rate", {"rate_per_second": 0}, "options.rate_per_second"),
            ("text rate", {"rate_per_second": "fast"}, "options.rate_per_second"),
            ("fractional cap", {"daily_cap": 2.5}, "options.daily_cap"),
            ("zero cap", {"daily_cap": 0}, "options.daily_cap"),
        ],
    )
    def test_bad_limits_name_the_field(
        self, database: Database, shop: Shop, _case: str, limits: dict[str, Any], field: str
    ) -> None:
        """A wrong limit is refused with its field and nothing is stored."""
        with database.write() as session:
            with pytest.raises(InvalidInput) as error:
                set_provider(
                    session,
                    shop.ref.id,
                    "email",
                    options={"host": "h", "from": "a@b.c", **limits},
                    now=NOW,
                    keys=KEYS,
                )
            assert error.value.field == field
            assert get_provider(session, shop.ref.id, "email", keys=KEYS) is None


def test_a_daily_cap_of_2_sends_2_of_5_and_keeps_3_queued_for_tomorrow(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """The cap counts the workspace's day (São Paulo: it starts at 03:00 UTC); nothing is lost."""
    # given 5 e-mails and a provider that takes 2 a day
    use_smtp(database, shop, smtp, T0, options={"daily_cap": 2})
    contacts = [
        customer(database, shop, T0, user=f"c{n}", email=f"c{n}@example.com") for n in range(5)
    ]
    for contact in contacts:
        enqueue_email(database, shop, contact, T0)
    dispatch_due(database, T0)
    # when
    deliver_due(database, T0, courier())
    deliver_due(database, T0 + timedelta(hours=1), courier())  # a later pass the same day
    # then
    tomorrow = datetime(2026, 11, 4, 3, 0, tzinfo=UTC)
    assert len(smtp.received) == 2
    rows = messages(database, shop)
    assert sorted((m.status, m.attempts, m.next_attempt_at, m.error) for m in rows) == [
        ("queued", 0, tomorrow, "daily cap of 2 reached"),
        ("queued", 0, tomorrow, "daily cap of 2 reached"),
        ("queued", 0, tomorrow, "daily cap of 2 reached"),
        ("sent", 1, None, None),
        ("sent", 1, None, None),
    ]
    waiting = next(m for m in rows if m.status == "queued")
    with database.read() as session:
        (shown,), _ = contact_messages(session, shop.ref.id, waiting.contact_id)
    assert (shown["status"], shown["reason"], shown["until"]) == (
        "queued",
        "daily cap of 2 reached",
        tomorrow,
    )
    # when the next day starts, two more go and the last waits again
    deliver_due(database, tomorrow, courier())
    assert len(smtp.received) == 4
    statuses = Counter(m.status for m in messages(database, shop))
    assert statuses == {"sent": 4, "queued": 1}
    (last,) = [m for m in messages(database, shop) if m.status == "queued"]
    assert (last.next_attempt_at, last.attempts) == (tomorrow + DAY, 0)


def test_a_rate_limit_takes_a_share_per_pass_and_paces_the_connections(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """At 0.3/s a pass takes what 10 s allow (3); the sends are spaced by the shared pacer."""
    # given
    use_smtp(database, shop, smtp, T0, options={"rate_per_second": 0.3})
    for n in range(5):
        enqueue_email(
            database, shop, customer(database, shop, T0, user=f"c{n}", email=f"c{n}@e.com"), T0
        )
    dispatch_due(database, T0)
    clock = FakeClock()
    paced = Courier(
        keys=KEYS,
        public_url=PUBLIC_URL,
        connections=2,
        timeout=5,
        pacers=Pacers(clock=clock.now, sleep=clock.sleep),
    )
    # when
    claimed = deliver_due(database, T0, paced)
    # then
    assert claimed == 3
    assert len(smtp.received) == 3
    assert clock.slept >= 2 / 0.3 - 1e-6  # three sends at 0.3/s span at least two intervals
    assert Counter((m.status, m.error) for m in messages(database, shop)) == {
        ("sent", None): 3,
        ("queued", None): 2,  # still due: the next pass takes them, no reason to wait
    }


# -- API and CLI -----------------------------------------------------------------------------------
def test_admin_api_reads_and_changes_the_sending_settings(
    server_shop: tuple[LiveServer, Shop, Database],
) -> None:
    """GET shows the defaults, PUT changes them; bad input is a 400 naming the field; no key, 401."""
    live, shop, _ = server_shop
    client = httpx.Client(
        base_url=live.url, headers={"Authorization": f"Bearer {shop.keys.secret_key}"}, timeout=10
    )
    with client:
        before = client.get("/api/v1/settings/sending")
        put = client.put(
            "/api/v1/settings/sending",
            json={
                "quiet_hours": {"start": "21:00", "end": "09:30"},
                "caps": {"whatsapp": {"day": 2, "week": 4}},
                "smart_window_hours": 24,
            },
        )
        bad = [
            client.put("/api/v1/settings/sending", json=body)
            for body in (
                {"quiet_hours": {"start": "25:00", "end": "08:00"}},
                {"quiet_hours": {"start": "20:00"}},
                {"caps": {"email": {"day": "many"}}},
                {"caps": {"email": {"day": 9, "week": 3}}},
                {"caps": {"fax": {"day": 1}}},
                {"smart_window_hours": 500},
                {"colour": "red"},
            )
        ]
        after = client.get("/api/v1/settings/sending")
    assert before.status_code == 200
    assert before.json() == {
        "quiet_hours": {"start": "20:00", "end": "08:00"},
        "caps": {
            "email": {"day": 2, "week": 5},
            "push": {"day": 3, "week": 10},
            "sms": {"day": 1, "week": 2},
            "voice": {"day": 1, "week": 2},
            "whatsapp": {"day": 1, "week": 3},
        },
        "smart_window_hours": 16.0,
        "updated_at": None,
    }
    assert put.status_code == 200, put.text
    assert put.json() == after.json()
    assert after.json()["quiet_hours"] == {"start": "21:00", "end": "09:30"}
    assert after.json()["caps"]["whatsapp"] == {"day": 2, "week": 4}
    assert after.json()["smart_window_hours"] == 24.0
    assert [(b.status_code, b.json()["field"]) for b in bad] == [
        (400, "quiet_hours.start"),
        (400, "quiet_hours.end"),
        (400, "caps.email.day"),
        (400, "caps.email.week"),
        (400, "caps.fax"),
        (400, "smart_window_hours"),
        (400, "colour"),
    ]
    assert bad[0].json()["message"].startswith("quiet_hours.start must be HH:MM")
    assert httpx.get(f"{live.url}/api/v1/settings/sending", timeout=10).status_code == 401


def test_cli_prints_and_changes_the_sending_settings(tmp_path: Path) -> None:
    """`workspace sending` prints the settings; options change them; bad input names the option."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    shown = jornada(url, "workspace", "sending", "--workspace", "loja")
    assert shown.returncode == 0, shown.stderr
    assert "quiet hours: 20:00-08:00" in shown.stderr
    changed = jornada(
        url,
        "workspace",
        "sending",
        "--workspace",
        "loja",
        "--quiet",
        "22:00-07:00",
        "--cap",
        "email=3/day,6/week",
        "--cap",
        "sms=0/day",
        "--smart-window",
        "90m",
        "--json",
    )
    assert changed.returncode == 0, changed.stderr
    view = json.loads(changed.stdout)
    assert view["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert view["caps"]["email"] == {"day": 3, "week": 6}
    assert view["caps"]["sms"] == {"day": 0, "week": 2}
    assert view["smart_window_hours"] == 1.5
    for args, message in (
        (["--quiet", "22:00"], "error (quiet): --quiet is START-END"),
        (["--quiet", "22:00-7"], "error (quiet_hours.end): quiet_hours.end must be HH:MM"),
        (["--cap", "email=3/month"], "error (cap): --cap is CHANNEL=N/day[,N/week]"),
        (["--smart-window", "soon"], "error (smart-window): --smart-window is a duration"),
    ):
        bad = jornada(url, "workspace", "sending", "--workspace", "loja", *args)
        assert bad.returncode == 1
        assert message in bad.stderr
    kept = json.loads(jornada(url, "workspace", "sending", "--workspace", "loja", "--json").stdout)
    assert kept == view


def test_cli_channels_set_takes_a_rate_and_a_daily_cap(tmp_path: Path) -> None:
    """`channels set email --rate-per-second --daily-cap` stores them; a bad value changes nothing."""
    url = f"sqlite:///{tmp_path / 'var' / 'jornada.db'}"
    assert jornada(url, "workspace", "create", "loja").returncode == 0
    base = ["channels", "set", "email", "--workspace", "loja", "--smtp-url", "smtp://h:25"]
    base += ["--from", "loja@loja.test", "--no-starttls"]
    set_ = jornada(url, *base, "--rate-per-second", "5", "--daily-cap", "200")
    assert set_.returncode == 0, set_.stderr
    assert "email: at most 5/s, 200 a day" in set_.stderr
    (view,) = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    assert (view["options"]["rate_per_second"], view["options"]["daily_cap"]) == (5.0, 200)
    bad = jornada(url, *base, "--daily-cap", "0")
    assert bad.returncode == 2
    assert "--daily-cap" in bad.stderr
    (still,) = json.loads(jornada(url, "channels", "list", "--workspace", "loja", "--json").stdout)
    assert still["options"]["daily_cap"] == 200  # the refused command changed nothing


def test_flow_stats_show_why_messages_were_not_sent(
    database: Database, shop: Shop, smtp: SmtpServer
) -> None:
    """The workspace's quiet hours defer the WhatsApp step; the provider's daily cap holds an e-mail."""
    # given a workspace quiet 09:00-12:00 and an e-mail provider that takes 1 a day
    with database.write() as session:
        install(session, shop.ref.id, CART, now=T0)
        set_sending_settings(session, shop.ref.id, quiet=("09:00", "12:00"), now=T0)
    use_smtp(database, shop, smtp, T0, options={"daily_cap": 1})
    for n, user in enumerate(("ana", "bia")):
        traits = {
            "email": f"{user}@loja.com",
            "phone": f"+551198765432{n}",
            "consent": {"email_marketing": True, "whatsapp_marketing": True},
        }
        checkout = {"checkout_url": "https://loja.test/c/1", "value": "199.90"}
        batch = [
            {"type": "identify", "userId": user, "traits": traits},
            {"type": "track", "userId": user, "event": "Checkout Started", "properties": checkout},
        ]
        stamped = [{"timestamp": T0.isoformat(), **m} for m in batch]
        assert accept_messages(database, shop.ref, stamped, received_at=T0).rejected == []
    # when the flow's steps come due at 11:00 local and a delivery pass runs
    later = T0 + timedelta(hours=1)
    tick(database, later)
    deliver_due(database, later, courier())
    # then
    with database.read() as session:
        steps = flow_stats(session, shop.ref.id, CART.key)["steps"]
    assert steps == [
        {
            "step": "email",
            "channel": "email",
            "queued": 1,
            "sent": 1,
            "reasons": {"daily cap of 1 reached": 1},
        },
        {
            "step": "whatsapp",
            "channel": "whatsapp",
            "deferred": 2,
            "reasons": {"quiet hours": 2},
        },
    ]


def test_migration_0015_matches_the_model(database: Database) -> None:
    """The table of migration 0015 is exactly what the ORM declares, on both databases."""
    mine = MetaData()
    tables = (SendingSettingsRow, Message, Workspace)  # messages: ix_messages_sent; the FK target
    for table in (t.__table__ for t in tables):
        table.to_metadata(mine)  # type: ignore[attr-defined]
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [
            d
            for d in compare_metadata(context, mine)
            if not (
                d[0] == "remove_table"
                or (d[0] == "remove_index" and d[1].table.name not in mine.tables)
            )
        ]
    assert diff == []
