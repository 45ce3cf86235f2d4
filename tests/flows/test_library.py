"""The 15 library flows, each run by the simulator (the real engine on a virtual clock)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jornada.flows import FlowDocument, library_flows
from jornada.flows.definition import EventTrigger
from jornada.simulation import Effect, simulate

SP = ZoneInfo("America/Sao_Paulo")
T0 = datetime(2026, 11, 3, 10, 0, tzinfo=SP)  # a Tuesday, 10:00 in São Paulo
LIBRARY = {f.key: f for f in library_flows()}
ALL_CONSENT = {
    "email_marketing": True,
    "whatsapp_marketing": True,
    "sms_marketing": True,
    "push_marketing": True,
}


def person(
    user: str = "ana", consent: dict[str, bool] | None = None, **traits: Any
) -> dict[str, Any]:
    return {
        "userId": user,
        "timestamp": (T0 - timedelta(days=1)).isoformat(),  # opted in the day before
        "traits": {
            "email": f"{user}@loja.com",
            "phone": "+5511987654321",
            "consent": ALL_CONSENT if consent is None else consent,
            **traits,
        },
    }


def track(event: str, at: datetime, user: str = "ana", **props: Any) -> dict[str, Any]:
    return {"userId": user, "event": event, "timestamp": at.isoformat(), "properties": props}


def run(
    keys: list[str],
    events: list[dict[str, Any]],
    *,
    contacts: list[dict[str, Any]] | None = None,
    until: datetime | None = None,
) -> list[Effect]:
    flows: list[FlowDocument] = [LIBRARY[k] for k in keys]
    end = until or T0 + timedelta(days=30)
    return simulate(flows, events, contacts=contacts or [person()], until=end)


def brief(
    effects: list[Effect],
    *,
    actions: tuple[str, ...] = ("send", "task", "suppress", "coupon", "tag", "stage", "notify"),
) -> list[tuple[str, str, str]]:
    """(local time, action, channel/template or detail) for the effects a test checks."""
    out = []
    for e in effects:
        if e.action not in actions:
            continue
        what = (
            f"{e.channel}:{e.template}"
            if e.action in ("send", "suppress")
            else (
                e.detail.get("tag")
                or e.detail.get("stage")
                or e.detail.get("type")
                or e.detail.get("discount")
                or e.detail.get("message")
                or ""
            )
        )
        out.append((e.at.astimezone(SP).strftime("%m-%d %H:%M"), e.action, str(what)))
    return out


def exits(effects: list[Effect]) -> list[tuple[str, str]]:
    return [(e.flow, str(e.detail["reason"])) for e in effects if e.action == "exit"]


def test_library_has_the_fifteen_flows() -> None:
    assert sorted(LIBRARY) == sorted(
        [
            "hot-lead",
            "lead-nurture",
            "cart-abandonment",
            "reactivation",
            "high-ticket-presale",
            "b2b-onboarding",
            "nps-after-delivery",
            "upsell-cross-sell",
            "proposal-urgency",
            "unpaid-boleto",
            "welcome-series",
            "discount-timing",
            "browse-abandonment",
            "post-purchase",
            "win-back",
        ]
    )


# -- 1 hot lead ------------------------------------------------------------------------------
def test_hot_lead_fourth_view_in_a_session_tags_emails_and_a_click_makes_a_task() -> None:
    views = [
        track("Product Viewed", T0 + timedelta(seconds=20 * i), product_id=f"p{i}")
        for i in range(4)
    ]
    click = track("Message Clicked", T0 + timedelta(minutes=30))
    effects = run(["hot-lead"], [*views, click])
    assert brief(effects) == [
        ("11-03 10:01", "tag", "lead-quente"),
        ("11-03 10:01", "stage", "Engaged"),
        ("11-03 10:01", "send", "email:hot-lead-consultivo"),
        ("11-03 10:30", "task", "call"),
    ]
    task = next(e for e in effects if e.action == "task")
    assert task.detail["due_at"] == (T0 + timedelta(minutes=45)).astimezone(UTC).isoformat()


def test_hot_lead_three_views_spread_over_hours_do_nothing() -> None:
    views = [track("Product Viewed", T0 + timedelta(hours=i)) for i in range(4)]
    assert brief(run(["hot-lead"], views)) == []


# -- 2 lead nurture --------------------------------------------------------------------------
def test_lead_nurture_three_emails_over_seven_days() -> None:
    effects = run(["lead-nurture"], [track("Signed Up", T0)])
    assert brief(effects) == [
        ("11-03 10:00", "send", "email:nurture-casos"),
        ("11-06 10:00", "send", "email:nurture-prova-social"),
        ("11-10 10:00", "send", "email:nurture-comparativo"),
    ]
    assert exits(effects) == [("lead-nurture", "sequence-done")]


def test_lead_nurture_sixty_points_qualify_and_create_a_task() -> None:
    engagement = [
        track("Message Opened", T0 + timedelta(hours=1)),
        track("Message Clicked", T0 + timedelta(hours=2)),
        track("Message Clicked", T0 + timedelta(days=3, hours=1)),
        track("Message Opened", T0 + timedelta(days=3, hours=2)),
    ]
    effects = run(["lead-nurture"], [track("Signed Up", T0), *engagement])
    # the flow's points add to the contact's lead score (docs/scoring.md): by the first click the
    # default model gives 31 (5 phone + 5 e-mail opt-in + 10 sign-up + 3 open + 8 click), and
    # with the flow's own 10 + 20 the score passes 60 there
    assert brief(effects) == [
        ("11-03 10:00", "send", "email:nurture-casos"),
        ("11-03 12:00", "stage", "Qualified"),
        ("11-03 12:00", "task", "call"),
    ]


# -- 3 cart abandonment ----------------------------------------------------------------------
def test_cart_abandonment_email_and_whatsapp_at_one_hour_then_task_after_click() -> None:
    effects = run(
        ["cart-abandonment"],
        [
            track("Checkout Started", T0, checkout_url="https://loja.test/c/1", value="249.90"),
            track("Message Clicked", T0 + timedelta(hours=1, minutes=10)),
        ],
    )
    assert brief(effects) == [
        ("11-03 11:00", "send", "email:cart-abandonment-email"),
        ("11-03 11:00", "send", "whatsapp:cart-abandonment-whatsapp"),
        ("11-03 13:10", "task", "call"),
    ]


# -- 4 reactivation --------------------------------------------------------------------------
def test_reactivation_sequence_and_extra_offer_after_an_open() -> None:
    order = track("Order Completed", T0, order_id="1", total="120.00")
    opened = track("Message Opened", T0 + timedelta(days=30, hours=1))
    effects = run(["reactivation"], [order, opened], until=T0 + timedelta(days=34))
    assert brief(effects) == [
        ("12-03 10:00", "coupon", "15%"),
        ("12-03 10:00", "send", "email:reactivation-vip-coupon"),
        ("12-03 14:00", "send", "push:reactivation-push"),
        ("12-04 10:00", "send", "whatsapp:reactivation-voice-note"),
        ("12-05 10:00", "coupon", "20%"),
        ("12-05 10:00", "send", "email:reactivation-extra-offer"),
    ]


def test_reactivation_new_order_restarts_the_clock() -> None:
    effects = run(
        ["reactivation"],
        [
            track("Order Completed", T0, order_id="1", total="10"),
            track("Order Completed", T0 + timedelta(days=20), order_id="2", total="10"),
        ],
        until=T0 + timedelta(days=31),
    )
    assert brief(effects) == []
    assert exits(effects) == [("reactivation", "converted")]


# -- 5 high-ticket pre-sale ------------------------------------------------------------------
def test_high_ticket_presale_sequence_and_task_on_booking() -> None:
    effects = run(
        ["high-ticket-presale"],
        [
            track("Product Added", T0, product_id="sofa", price="1899.00"),
            track("Call Booked", T0 + timedelta(days=5)),
        ],
    )
    assert brief(effects) == [
        ("11-03 10:00", "send", "email:presale-demo-video"),
        ("11-05 10:00", "send", "email:presale-checklist"),
        ("11-07 10:00", "send", "email:presale-call-invite"),
        ("11-08 10:00", "task", "meeting"),
    ]
    assert exits(effects) == [("high-ticket-presale", "call-booked")]


def test_high_ticket_ignores_small_carts() -> None:
    assert brief(run(["high-ticket-presale"], [track("Product Added", T0, price="99.00")])) == []


# -- 6 B2B onboarding ------------------------------------------------------------------------
def test_b2b_onboarding_for_a_first_b2b_order() -> None:
    b2b = person(lead_type="b2b", company="Padaria Pão Quente")
    effects = run(
        ["b2b-onboarding"],
        [track("Order Completed", T0, order_id="1", total="900")],
        contacts=[b2b],
    )
    assert brief(effects) == [
        ("11-03 10:00", "send", "email:b2b-welcome"),
        ("11-03 10:00", "task", "call"),
        ("11-05 10:00", "send", "email:b2b-integration-tutorial"),
        ("11-08 10:00", "send", "email:b2b-meeting-invite"),
    ]


def test_b2b_onboarding_skips_consumers() -> None:
    effects = run(["b2b-onboarding"], [track("Order Completed", T0, order_id="1", total="90")])
    assert brief(effects) == []


# -- 7 NPS after delivery --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("_case", "score", "expected"),
    [
        (
            "promoter",
            10,
            [
                ("11-06 10:05", "send", "email:nps-referral-invite"),
                ("11-06 10:05", "send", "whatsapp:nps-review-request"),
            ],
        ),
        (
            "detractor",
            3,
            [
                ("11-06 10:05", "notify", "Cliente detrator no NPS: abrir atendimento"),
                ("11-06 10:05", "task", "ticket"),
            ],
        ),
        ("passive", 8, []),
    ],
)
def test_nps_three_days_after_delivery_and_the_answer_decides(
    _case: str, score: int, expected: list[tuple[str, str, str]]
) -> None:
    effects = run(
        ["nps-after-delivery"],
        [
            track("Order Delivered", T0, order_id="1"),
            track("Survey Answered", T0 + timedelta(days=3, minutes=5), kind="nps", score=score),
        ],
    )
    assert brief(effects) == [
        ("11-06 10:00", "send", "whatsapp:nps-survey"),
        ("11-06 10:00", "send", "email:nps-advanced-guide"),
        *expected,
    ]


# -- 8 upsell --------------------------------------------------------------------------------
def test_upsell_when_a_big_spender_returns_within_two_weeks() -> None:
    effects = run(
        ["upsell-cross-sell"],
        [
            track("Order Completed", T0, order_id="1", total="450.00"),
            track("Product Viewed", T0 + timedelta(days=6), product_id="p2"),
        ],
    )
    assert brief(effects) == [("11-09 10:00", "send", "email:upsell-kits")]


def test_no_upsell_after_two_weeks_or_for_small_spenders() -> None:
    late = run(
        ["upsell-cross-sell"],
        [
            track("Order Completed", T0, order_id="1", total="450"),
            track("Product Viewed", T0 + timedelta(days=20)),
        ],
    )
    small = run(
        ["upsell-cross-sell"],
        [
            track("Order Completed", T0, order_id="1", total="80"),
            track("Product Viewed", T0 + timedelta(days=2)),
        ],
    )
    assert brief(late) == brief(small) == []


# -- 9 proposal urgency ----------------------------------------------------------------------
def test_proposal_viewed_three_times_in_a_day_sends_sms_and_task() -> None:
    views = [
        track("Proposal Viewed", T0 + timedelta(hours=h), proposal_id="P-7") for h in (0, 3, 5)
    ]
    effects = run(["proposal-urgency"], views)
    assert brief(effects) == [
        ("11-03 15:00", "send", "sms:proposal-urgency-sms"),
        ("11-03 15:00", "task", "call"),
    ]
    assert exits(effects) == [("proposal-urgency", "end-of-day")]
    assert next(e.at for e in effects if e.action == "exit") == datetime(
        2026, 11, 3, 23, 55, tzinfo=SP
    )


def test_views_of_different_proposals_do_not_add_up() -> None:
    views = [
        track("Proposal Viewed", T0 + timedelta(hours=h), proposal_id=f"P-{h}") for h in (0, 3, 5)
    ]
    assert brief(run(["proposal-urgency"], views)) == []


# -- 10 unpaid boleto ------------------------------------------------------------------------
def test_unpaid_boleto_reminder_call_and_new_boleto() -> None:
    issued = track(
        "Boleto Issued",
        T0,
        order_id="77",
        amount="189.90",
        due_date="2026-11-06",
        url="https://boleto.test/77",
    )
    expired = track("Boleto Expired", datetime(2026, 11, 7, 0, 0, tzinfo=SP), order_id="77")
    effects = run(["unpaid-boleto"], [issued, expired])
    assert brief(effects) == [
        ("11-05 09:00", "send", "email:boleto-reminder"),
        ("11-05 09:00", "send", "whatsapp:boleto-reminder-whatsapp"),
        ("11-06 10:00", "send", "voice:boleto-due-call"),
        ("11-07 00:00", "send", "email:boleto-new-offer"),
    ]


def test_paid_boleto_stops_everything() -> None:
    effects = run(
        ["unpaid-boleto"],
        [
            track("Boleto Issued", T0, order_id="77", amount="10", due_date="2026-11-06"),
            track("Boleto Paid", T0 + timedelta(days=1), order_id="77"),
        ],
    )
    assert brief(effects) == []
    assert exits(effects) == [("unpaid-boleto", "converted")]


# -- 11 welcome ------------------------------------------------------------------------------
def test_welcome_series_over_ten_days_until_first_order() -> None:
    effects = run(["welcome-series"], [track("Signed Up", T0)])
    assert brief(effects) == [
        ("11-03 10:00", "send", "email:welcome-brand-story"),
        ("11-05 10:00", "send", "email:welcome-best-sellers"),
        ("11-08 10:00", "coupon", "10%"),
        ("11-08 10:00", "send", "email:welcome-first-purchase"),
        ("11-13 10:00", "send", "email:welcome-last-call"),
    ]


# -- 12 discount timing ----------------------------------------------------------------------
def test_discount_three_days_before_the_expected_next_order() -> None:
    orders = [
        track("Order Completed", T0 + timedelta(days=d), order_id=str(d), total="50")
        for d in (0, 20)
    ]
    effects = run(["discount-timing"], orders, until=T0 + timedelta(days=45))
    # gap 20 days → next expected on day 40 → discount on day 37 at 10:00
    assert brief(effects) == [
        ("12-10 10:00", "coupon", "10%"),
        ("12-10 10:00", "send", "email:discount-timing"),
    ]


def catalog_update(at: datetime, before: str, now: str, product: str = "p1") -> dict[str, Any]:
    """What the store's catalog sync sends when a price changes."""
    return track(
        "Product Updated",
        at,
        user="catalog",
        product_id=product,
        name="Cafeteira",
        price=now,
        previous_price=before,
    )


def test_discount_when_a_viewed_product_gets_cheaper() -> None:
    effects = run(
        ["discount-timing"],
        [
            track("Product Viewed", T0, product_id="p1", name="Cafeteira", price="100.00"),
            track("Product Viewed", T0, user="bia", product_id="p2"),
            track("Product Viewed", T0 - timedelta(days=40), user="caio", product_id="p1"),
            catalog_update(T0 + timedelta(days=1), before="100.00", now="98.00"),  # 2%: too little
            catalog_update(T0 + timedelta(days=2), before="100.00", now="80.00"),
        ],
        contacts=[person(), person("bia"), person("caio")],
    )
    assert brief(effects) == [("11-05 10:00", "send", "email:price-drop")]
    (sent,) = [e for e in effects if e.action == "send"]
    assert sent.contact == "ana"  # bia viewed another product, caio 40 days ago


# -- 13 browse abandonment -------------------------------------------------------------------
def test_browse_abandonment_after_four_hours_without_a_cart() -> None:
    assert brief(run(["browse-abandonment"], [track("Product Viewed", T0, product_id="p1")])) == [
        ("11-03 14:00", "send", "email:browse-abandonment")
    ]


def test_a_cart_ends_browse_abandonment() -> None:
    effects = run(
        ["browse-abandonment"],
        [
            track("Product Viewed", T0, product_id="p1"),
            track("Product Added", T0 + timedelta(hours=1)),
        ],
    )
    assert brief(effects) == []
    assert exits(effects) == [("browse-abandonment", "exited:Product Added")]


# -- 14 post-purchase ------------------------------------------------------------------------
def test_post_purchase_follows_the_order() -> None:
    effects = run(
        ["post-purchase"],
        [
            track("Order Completed", T0, order_id="9", total="300"),
            track("Order Shipped", T0 + timedelta(days=1), order_id="9"),
            track("Order Delivered", T0 + timedelta(days=4), order_id="9"),
        ],
    )
    assert brief(effects) == [
        ("11-03 10:00", "send", "email:order-confirmation"),
        ("11-04 10:00", "send", "email:order-shipped"),
        ("11-04 10:00", "send", "whatsapp:order-shipped-whatsapp"),
        ("11-07 10:00", "send", "email:order-delivered"),
        ("11-09 10:00", "send", "email:care-guide"),
        ("11-14 10:00", "send", "email:post-purchase-cross-sell"),
    ]


# -- 15 win-back -----------------------------------------------------------------------------
def test_win_back_escalates_then_suppresses_the_silent() -> None:
    effects = run(
        ["win-back"],
        [track("Order Completed", T0, order_id="1", total="80")],
        until=T0 + timedelta(days=125),
    )
    assert brief(effects) == [
        ("02-01 10:00", "coupon", "10%"),
        ("02-01 10:00", "send", "email:winback-1"),
        ("02-08 10:00", "coupon", "15%"),
        ("02-08 10:00", "send", "email:winback-2"),
        ("02-15 10:00", "coupon", "20%"),
        ("02-15 10:00", "send", "whatsapp:winback-3"),
        ("02-22 10:00", "tag", "sem-resposta"),
    ]
    # the subscriber series scheduled at the opt-in is cancelled by the first order
    assert exits(effects) == [("win-back", "cancelled:Order Completed"), ("win-back", "suppressed")]


def test_win_back_a_subscriber_sixty_days_after_the_last_open() -> None:
    """A subscriber who never bought: the series starts 60 days after the last open, at 10:00."""
    opened = T0 + timedelta(days=30)
    effects = run(
        ["win-back"],
        [track("Message Opened", opened, template="welcome-1")],
        contacts=[{**person(), "timestamp": T0.isoformat()}],
        until=T0 + timedelta(days=120),
    )
    assert brief(effects)[:2] == [
        ("02-01 10:00", "coupon", "10%"),  # 60 days after the open on 12-03 (not the opt-in: 01-02)
        ("02-01 10:00", "send", "email:winback-1"),
    ]
    assert ("win-back", "suppressed") in exits(effects)


def test_win_back_a_subscriber_who_buys_is_a_customer_instead() -> None:
    effects = run(
        ["win-back"],
        [track("Order Completed", T0 + timedelta(days=59), order_id="1", total="80")],
        contacts=[{**person(), "timestamp": T0.isoformat()}],
        until=T0 + timedelta(days=70),
    )
    assert brief(effects) == []  # the subscriber series never starts; the customer's waits 90 days
    assert exits(effects) == [("win-back", "cancelled:Order Completed")]


# -- rules every flow obeys, checked on each flow -------------------------------------------
def starts(key: str, at: datetime) -> list[dict[str, Any]]:
    """Events that enrol a contact in flow ``key`` at ``at``."""
    order = track("Order Completed", at, order_id="o1", total="450.00")
    return {
        "hot-lead": [track("Product Viewed", at + timedelta(seconds=10 * i)) for i in range(4)],
        "lead-nurture": [track("Signed Up", at)],
        "cart-abandonment": [track("Checkout Started", at, value="99.90")],
        "reactivation": [order],
        "high-ticket-presale": [track("Product Added", at, price="999.00")],
        "b2b-onboarding": [order],
        "nps-after-delivery": [track("Order Delivered", at, order_id="o1")],
        "upsell-cross-sell": [
            track("Order Completed", at - timedelta(days=1), order_id="o0", total="450"),
            track("Product Viewed", at),
        ],
        "proposal-urgency": [
            track("Proposal Viewed", at + timedelta(minutes=m), proposal_id="P") for m in (0, 1, 2)
        ],
        "unpaid-boleto": [
            track(
                "Boleto Issued",
                at,
                order_id="b1",
                amount="50",
                due_date=(at + timedelta(days=3)).date().isoformat(),
            )
        ],
        "welcome-series": [track("Signed Up", at)],
        "discount-timing": [
            track("Order Completed", at - timedelta(days=10), order_id="o0", total="10"),
            track("Order Completed", at, order_id="o1", total="10"),
        ],
        "browse-abandonment": [track("Product Viewed", at)],
        "post-purchase": [order],
        "win-back": [order],
    }[key]


def follow_ups(key: str, at: datetime) -> list[dict[str, Any]]:
    """What a customer does later, so that a flow reaches its later steps."""
    return {
        "nps-after-delivery": [
            track("Survey Answered", at + timedelta(days=3, hours=12), kind="nps", score=10)
        ],
        "post-purchase": [
            track("Order Shipped", at + timedelta(days=1, hours=12), order_id="o1"),
            track("Order Delivered", at + timedelta(days=3), order_id="o1"),
        ],
    }.get(key, [])


B2B = {"lead_type": "b2b"}
MARKETING_FLOWS = sorted(
    k for k, f in LIBRARY.items() if any(s.send and s.send.purpose == "marketing" for s in f.steps)
)
GOAL_FLOWS = sorted(k for k, f in LIBRARY.items() if f.goal is not None)
REPLY_FLOWS = sorted(k for k, f in LIBRARY.items() if f.exit.on_reply)


def run_flow(
    key: str,
    events: list[dict[str, Any]],
    *,
    consent: dict[str, bool] | None = None,
    days: int = 130,
) -> list[Effect]:
    contact = person(consent=consent, **(B2B if key == "b2b-onboarding" else {}))
    return run([key], events, contacts=[contact], until=T0 + timedelta(days=days))


@pytest.mark.parametrize("key", GOAL_FLOWS)
def test_goal_reached_early_ends_the_run_and_nothing_more_is_sent(key: str) -> None:
    """The goal event right after entry converts the run; no message goes out after it."""
    goal = LIBRARY[key].goal
    assert goal is not None
    events = starts(key, T0)
    last = max(datetime.fromisoformat(e["timestamp"]) for e in events)
    goal_at = last + timedelta(minutes=1)
    effects = run_flow(key, [*events, track(goal.event, goal_at, order_id="goal", total="10")])
    first_run = next(
        e.run for e in effects if e.action == "exit" and e.detail["reason"] == "converted"
    )
    assert [
        e for e in effects if e.run == first_run and e.action == "send" and e.at > goal_at
    ] == []


@pytest.mark.parametrize("key", MARKETING_FLOWS)
def test_without_consent_marketing_is_suppressed_with_its_reason(key: str) -> None:
    """No marketing message goes out without consent; each is recorded with the reason."""
    effects = run_flow(key, [*starts(key, T0), *follow_ups(key, T0)], consent={})
    marketing = {s.id for s in LIBRARY[key].steps if s.send and s.send.purpose == "marketing"}
    sent = [e for e in effects if e.action == "send" and e.step in marketing]
    suppressed = [e for e in effects if e.action == "suppress"]
    assert sent == []
    assert suppressed, "the flow should have reached at least one marketing send"
    assert all(
        e.detail["reason"] == f"no consent: {e.channel if e.channel != 'voice' else 'sms'}"
        "_marketing"
        for e in suppressed
    )


INTRUSIVE_FLOWS = sorted(
    k
    for k, f in LIBRARY.items()
    if any(s.send and s.send.channel in ("sms", "whatsapp", "voice") for s in f.steps)
)


@pytest.mark.parametrize("key", INTRUSIVE_FLOWS)
def test_sms_whatsapp_and_voice_never_go_out_in_quiet_hours(key: str) -> None:
    """Entered at 21:30 local, no SMS/WhatsApp/voice is sent between 20:00 and 08:00."""
    night = datetime(2026, 11, 3, 21, 30, tzinfo=SP)
    effects = run_flow(key, [*starts(key, night), *follow_ups(key, night)])
    intrusive = [
        e for e in effects if e.action == "send" and e.channel in ("sms", "whatsapp", "voice")
    ]
    assert intrusive, "the flow should have sent at least one SMS, WhatsApp or call"
    for effect in intrusive:
        local = effect.at.astimezone(SP).time()
        assert time(8, 0) <= local < time(20, 0), (effect, local)


@pytest.mark.parametrize("key", REPLY_FLOWS)
def test_a_reply_stops_the_run(key: str) -> None:
    events = starts(key, T0)
    last = max(datetime.fromisoformat(e["timestamp"]) for e in events)
    replied = last + timedelta(minutes=2)
    effects = run_flow(key, [*events, track("Message Replied", replied)])
    assert (key, "exited:reply") in exits(effects)
    assert [e for e in effects if e.action == "send" and e.at > replied and e.flow == key] == []


@pytest.mark.parametrize("key", sorted(LIBRARY))
def test_reentry_policy(key: str) -> None:
    """A second entry while a run is active starts no second run; re-entry rules apply after."""
    doc = LIBRARY[key]
    first = starts(key, T0)
    again = [
        {**e, "messageId": f"again-{i}"} for i, e in enumerate(starts(key, T0 + timedelta(hours=1)))
    ]
    effects = run_flow(key, [*first, *again], days=3)
    runs = {e.run for e in effects if e.flow == key}
    triggers = [name for t in doc.triggers if isinstance(t, EventTrigger) for name in t.events]
    if doc.goal is not None and doc.goal.event in triggers:
        # the second trigger is also the goal: the first run converts (and a new one begins)
        started = [  # a scheduled run the order cancelled never started
            e.detail["reason"]
            for e in effects
            if e.action == "exit" and not str(e.detail["reason"]).startswith("cancelled:")
        ]
        assert started[:1] == ["converted"]
    else:
        assert len(runs) == 1, effects
