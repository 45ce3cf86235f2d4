"""The pure lead-scoring core: decay, caps, patterns, reasons, thresholds and the model language."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jornada.audience.scoring import (
    ScoreState,
    ScoringModel,
    ScoringModelError,
    compile_model,
    decayed,
    default_model,
    score,
)
from jornada.audience.scoring.core import (
    Crossing,
    crossings,
    micros,
    next_check,
    rule_value,
    stage_after,
)
from jornada.contacts.state import ContactState
from jornada.events.record import EventRecord
from jornada.ids import new_id

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MINUS = "\u2212"

MODEL: dict[str, Any] = {
    "name": "teste",
    "half_life": "30d",
    "fit": [
        {
            "key": "cnpj",
            "label": "company (CNPJ)",
            "points": 20,
            "where": {"trait": "cnpj", "exists": True},
        }
    ],
    "engagement": [
        {
            "key": "pricing",
            "label": "viewed pricing",
            "page": "*",
            "where": {"prop": "path", "contains": "/precos"},
            "points": 30,
            "count": 3,
            "within": "2d",
            "cap": 30,
        },
        {
            "key": "views",
            "label": "viewed a product",
            "event": "Product Viewed",
            "points": 2,
            "cap": 20,
        },
        {"key": "checkout", "label": "started checkout", "event": "Checkout Started", "points": 15},
        {
            "key": "unsub",
            "label": "unsubscribed",
            "event": "Unsubscribed",
            "points": -20,
            "cap": 20,
        },
    ],
    "thresholds": [
        {"name": "MQL", "score": 50, "stage": "Engaged"},
        {"name": "SQL", "score": 100, "stage": "Qualified"},
    ],
}


def contact(**traits: Any) -> ContactState:
    return (
        ContactState.new(new_id(), "ws", at=T0, now=T0, timezone="UTC", currency="BRL")
        if not traits
        else _with(traits)
    )


def _with(traits: dict[str, Any]) -> ContactState:
    state = ContactState.new(new_id(), "ws", at=T0, now=T0, timezone="UTC", currency="BRL")
    state.traits = traits
    return state


def track(name: str, at: datetime, **props: Any) -> EventRecord:
    return EventRecord(new_id(), "track", at, at, event=name, properties=props)


def page(path: str, at: datetime) -> EventRecord:
    return EventRecord(new_id(), "page", at, at, event=None, properties={"path": path})


def run(
    model: ScoringModel,
    state: ScoreState,
    person: ContactState,
    events: list[EventRecord],
    now: datetime,
) -> Any:
    """One pass, with the score written back to the contact as the service does."""
    outcome = score(model, state, person, events, now)
    person.score = outcome.after
    if outcome.stage:
        person.stage = outcome.stage
    return outcome


class TestDecay:
    def test_points_halve_every_half_life_rounded_half_up(self) -> None:
        """30 points are 15 after one half-life, 8 (7.5) after two, 0 after seven."""
        half = timedelta(days=30)
        assert [decayed(30, T0, T0 + n * half, half) for n in range(8)] == [
            30,
            15,
            8,
            4,
            2,
            1,
            0,
            0,
        ]
        assert decayed(-20, T0, T0 + half, half) == -10
        assert decayed(30, T0, T0 - DAY, half) == 30  # not decayed before it happened
        assert decayed(30, T0, T0 + 1000 * DAY, None) == 30  # no half-life: no decay

    def test_decay_is_a_reason_and_the_reasons_add_up(self) -> None:
        """A read 30 days later writes "-7 decay" (with a true minus sign) and the score is what the reasons add to."""
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        first = run(model, state, person, [track("Checkout Started", T0)], T0)
        later = run(model, state, person, [], T0 + 30 * DAY)
        assert [(r.points, r.reason) for r in first.reasons] == [(15, "+15 started checkout")]
        assert [(r.points, r.reason, r.rule) for r in later.reasons] == [
            (-7, f"{MINUS}7 decay", "decay")
        ]
        assert person.score == 8 == sum(r.points for r in first.reasons + later.reasons)


class TestCaps:
    def test_a_rule_never_gives_more_than_its_cap(self) -> None:
        """15 product views at +2 with a cap of 20: ten count, the rest add nothing."""
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        views = [track("Product Viewed", T0 + n * timedelta(minutes=1)) for n in range(15)]
        outcome = run(model, state, person, views, T0 + timedelta(minutes=15))
        assert person.score == 20
        assert [(r.points, r.reason) for r in outcome.reasons] == [
            (20, "+20 viewed a product (10 times)")
        ]
        assert rule_value(state.rules["views"], T0 + DAY, model.half_life) == 20

    def test_decay_makes_room_under_the_cap_again(self) -> None:
        """After one half-life the views are worth 10, so five more views count."""
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        run(
            model,
            state,
            person,
            [track("Product Viewed", T0 + n * timedelta(seconds=1)) for n in range(10)],
            T0 + DAY,
        )
        at = T0 + 30 * DAY
        again = run(
            model,
            state,
            person,
            [track("Product Viewed", at + n * timedelta(seconds=1)) for n in range(8)],
            at + DAY,
        )
        awarded = [r.points for r in again.reasons if r.rule == "views"]
        assert awarded == [10]  # five views of +2, one reason
        assert rule_value(state.rules["views"], at + DAY, model.half_life) <= 20

    def test_a_partial_award_says_it_was_capped(self) -> None:
        model = compile_model(
            {
                **MODEL,
                "engagement": [
                    {"key": "v", "label": "viewed", "event": "V", "points": 15, "cap": 20}
                ],
            },
            1,
        )
        person, state = contact(), ScoreState(1)
        outcome = run(
            model,
            state,
            person,
            [track("V", T0), track("V", T0 + timedelta(seconds=1))],
            T0 + timedelta(seconds=1),
        )
        assert [r.reason for r in outcome.reasons] == ["+20 viewed (2 times; capped at 20)"]

    def test_a_negative_rule_is_capped_below_zero(self) -> None:
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        outcome = run(
            model, state, person, [track("Unsubscribed", T0), track("Unsubscribed", T0)], T0
        )
        assert [r.reason for r in outcome.reasons] == [f"{MINUS}20 unsubscribed"]
        assert person.score == -20


class TestPatterns:
    def test_three_pricing_views_within_two_days_give_one_award(self) -> None:
        """The issue's own example: "+30 viewed pricing 3x in 2 days"."""
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        views = [
            page("/precos", T0),
            page("/precos/atacado", T0 + DAY),
            page("/precos", T0 + 40 * timedelta(hours=1)),
        ]
        outcome = run(model, state, person, [*views, page("/sobre", T0 + DAY)], T0 + 2 * DAY)
        assert [(r.points, r.reason, r.at) for r in outcome.reasons] == [
            (30, "+30 viewed pricing 3x in 2 days", T0 + 40 * timedelta(hours=1))
        ]

    def test_views_further_apart_than_the_window_do_not_add_up(self) -> None:
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        views = [page("/precos", T0), page("/precos", T0 + DAY), page("/precos", T0 + 3 * DAY)]
        outcome = run(model, state, person, views, T0 + 3 * DAY)
        assert outcome.reasons == []
        assert state.rules["pricing"].hits == [
            micros(T0 + 3 * DAY)
        ]  # exactly 2 days before is outside

    def test_a_pattern_spans_batches(self) -> None:
        """Two views in one batch, the third in the next: the award comes with the third."""
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        run(
            model,
            state,
            person,
            [page("/precos", T0), page("/precos", T0 + timedelta(hours=1))],
            T0 + timedelta(hours=1),
        )
        stored = ScoreState.from_json(
            state.to_json(),
            model_version=1,
            engagement=state.engagement,
            total=state.total,
            as_of=state.as_of,
        )
        outcome = run(
            model,
            stored,
            person,
            [page("/precos", T0 + timedelta(hours=5))],
            T0 + timedelta(hours=5),
        )
        assert [r.points for r in outcome.reasons] == [30]


class TestFit:
    def test_fit_points_come_and_go_with_the_trait(self) -> None:
        model = compile_model(MODEL, 1)
        person, state = contact(cnpj="12.345.678/0001-90"), ScoreState(1)
        gained = run(model, state, person, [], T0)
        person.traits = {}
        lost = run(model, state, person, [], T0 + DAY)
        assert [r.reason for r in gained.reasons] == ["+20 company (CNPJ)"]
        assert [r.reason for r in lost.reasons] == [f"{MINUS}20 no longer company (CNPJ)"]
        assert person.score == 0

    def test_points_from_elsewhere_are_kept_as_an_adjustment(self) -> None:
        """A flow's `score: 10` step shows as a reason the next time scoring looks."""
        model = compile_model(MODEL, 1)
        person, state = contact(), ScoreState(1)
        person.score = 10
        outcome = run(model, state, person, [track("Checkout Started", T0)], T0)
        assert [(r.points, r.reason) for r in outcome.reasons] == [
            (10, "+10 flows or manual changes"),
            (15, "+15 started checkout"),
        ]
        assert person.score == 25


class TestThresholds:
    def test_crossing_up_and_down(self) -> None:
        model = compile_model(MODEL, 1)
        assert [(c.threshold.name, c.direction) for c in crossings(model, 40, 110)] == [
            ("MQL", "up"),
            ("SQL", "up"),
        ]
        assert [(c.threshold.name, c.direction) for c in crossings(model, 110, 40)] == [
            ("SQL", "down"),
            ("MQL", "down"),
        ]
        assert crossings(model, 50, 99) == []
        assert [c.threshold.name for c in crossings(model, 49, 50)] == ["MQL"]  # reaching counts

    @pytest.mark.parametrize(
        ("_case", "current", "names", "expected"),
        [
            ("forward to the furthest", "New", ["MQL", "SQL"], "Qualified"),
            ("forward one", "Contacted", ["MQL"], "Engaged"),
            ("never backwards", "Qualified", ["MQL"], None),
            ("never away from Won", "Won", ["MQL", "SQL"], None),
            ("never away from Closed", "Closed", ["SQL"], None),
            ("not from a stage outside the funnel", "Customer", ["SQL"], None),
        ],
    )
    def test_stage_moves_forward_only(
        self, _case: str, current: str, names: list[str], expected: str | None
    ) -> None:
        model = compile_model(MODEL, 1)
        passed = [Crossing(t, "up") for t in model.thresholds if t.name in names]
        assert stage_after(current, passed) == expected
        assert stage_after(current, [Crossing(t, "down") for t in model.thresholds]) is None

    def test_a_pass_reports_crossings_and_the_stage(self) -> None:
        model = compile_model(MODEL, 1)
        person, state = contact(cnpj="1"), ScoreState(1)
        views = [page("/precos", T0 + n * timedelta(hours=1)) for n in range(3)]
        outcome = run(model, state, person, views, T0 + 3 * timedelta(hours=1))
        assert (outcome.before, outcome.after) == (0, 50)
        assert [(c.threshold.name, c.direction) for c in outcome.crossings] == [("MQL", "up")]
        assert person.stage == "Engaged"
        down = run(model, state, person, [], T0 + 20 * DAY)
        assert [(c.threshold.name, c.direction) for c in down.crossings] == [("MQL", "down")]
        assert down.stage is None
        assert person.stage == "Engaged"  # never backwards

    def test_next_check_is_the_minute_the_score_falls_below_a_threshold(self) -> None:
        """20 fit + 30 engagement = 50 (MQL); it drops below 50 as soon as 30 decays to 29."""
        model = compile_model({**MODEL, "half_life": "1d"}, 1)
        person, state = contact(cnpj="1"), ScoreState(1)
        run(
            model,
            state,
            person,
            [page("/precos", T0 + n * timedelta(minutes=1)) for n in range(3)],
            T0 + timedelta(minutes=2),
        )
        at = next_check(model, state, T0 + timedelta(minutes=2))
        assert at is not None
        award = T0 + timedelta(minutes=2)
        assert decayed(30, award, at, model.half_life) == 29
        assert decayed(30, award, at - timedelta(minutes=1), model.half_life) == 30
        assert next_check(compile_model({**MODEL, "half_life": None}, 1), state, T0) is None


class TestModelLanguage:
    def test_the_default_model_loads(self) -> None:
        model = default_model()
        assert model.version == 0
        assert [t.name for t in model.thresholds] == ["MQL", "SQL"]
        assert {"Product Viewed", "Checkout Started", "Message Opened"} <= model.by_event.keys()
        assert model.fit_inputs == {"trait", "consent"}

    @pytest.mark.parametrize(
        ("_case", "change", "field", "message"),
        [
            (
                "count without window",
                {"engagement": [{"key": "a", "label": "a", "event": "E", "points": 5, "count": 3}]},
                "engagement[0].within",
                "needs a window",
            ),
            ("bad duration", {"half_life": "soon"}, "half_life", "not a duration"),
            (
                "won is not a threshold stage",
                {"thresholds": [{"name": "X", "score": 5, "stage": "Won"}]},
                "thresholds[0].stage",
                "a threshold moves to one of",
            ),
            (
                "unknown fact",
                {
                    "fit": [
                        {
                            "key": "f",
                            "label": "f",
                            "points": 5,
                            "where": {"fact": "orders", "gt": 1},
                        }
                    ]
                },
                "fit[0].where.fact",
                "unknown fact 'orders'",
            ),
            (
                "event and page",
                {
                    "engagement": [
                        {"key": "a", "label": "a", "event": "E", "page": "*", "points": 5}
                    ]
                },
                "engagement[0]",
                "exactly one of event or page",
            ),
            (
                "zero points",
                {"engagement": [{"key": "a", "label": "a", "event": "E", "points": 0}]},
                "engagement[0].points",
                "must not be 0",
            ),
            (
                "cap below points",
                {"engagement": [{"key": "a", "label": "a", "event": "E", "points": 10, "cap": 5}]},
                "engagement[0].cap",
                "below the rule's own 10 points",
            ),
            (
                "repeated key",
                {
                    "fit": [{"key": "a", "label": "a", "points": 1, "where": {"tag": "x"}}],
                    "engagement": [{"key": "a", "label": "a", "event": "E", "points": 5}],
                },
                "engagement[0].key",
                "'a' is used twice",
            ),
            ("unknown field", {"decay": "30d"}, "decay", "Extra inputs are not permitted"),
            (
                "bad property condition",
                {
                    "engagement": [
                        {
                            "key": "a",
                            "label": "a",
                            "event": "E",
                            "points": 5,
                            "where": {"prop": "x", "between": 1},
                        }
                    ]
                },
                "engagement[0].where",
                "unknown or misplaced key(s) between",
            ),
        ],
    )
    def test_mistakes_name_their_field(
        self, _case: str, change: dict[str, Any], field: str, message: str
    ) -> None:
        with pytest.raises(ScoringModelError) as error:
            compile_model({**MODEL, **change}, 1)
        assert error.value.field == field
        assert message in error.value.message
        assert error.value.code == "invalid_scoring_model"


# -- property: incremental equals from scratch ---------------------------------------------
PROPERTY_MODEL = compile_model(
    {
        "name": "property",
        "half_life": "2d",
        "fit": [
            {
                "key": "cnpj",
                "label": "company",
                "points": 20,
                "where": {"trait": "cnpj", "exists": True},
            }
        ],
        "engagement": [
            {"key": "view", "label": "viewed", "event": "View", "points": 3, "cap": 10},
            {
                "key": "big-view",
                "label": "viewed a big one",
                "event": "View",
                "points": 7,
                "where": {"prop": "price", "gt": 500},
            },
            {
                "key": "price",
                "label": "pricing",
                "event": "Price",
                "points": 20,
                "count": 3,
                "within": "1d",
                "cap": 25,
            },
            {"key": "unsub", "label": "unsubscribed", "event": "Unsub", "points": -15, "cap": 20},
        ],
        "thresholds": [
            {"name": "MQL", "score": 30, "stage": "Engaged"},
            {"name": "SQL", "score": 60, "stage": "Qualified"},
        ],
    },
    1,
)


def reference(
    events: list[EventRecord], fit: int, now: datetime
) -> tuple[int, dict[str, list[tuple[int, datetime]]]]:
    """The documented meaning, computed once over the whole history, without state or pruning."""
    half = PROPERTY_MODEL.half_life
    awards: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    hits: dict[str, list[datetime]] = defaultdict(list)
    for event in events:
        for rule in PROPERTY_MODEL.rules_for(event.type, event.event):
            spec, at = rule.rule, event.timestamp
            if rule.matches is not None and not rule.matches(event.properties):
                continue
            if spec.count > 1:
                assert rule.window is not None
                hits[spec.key] = [h for h in hits[spec.key] if h > at - rule.window] + [at]
                if len(hits[spec.key]) < spec.count:
                    continue
                hits[spec.key] = []
            points = spec.points
            if spec.cap is not None:
                value = sum(decayed(p, t, at, half) for p, t in awards[spec.key])
                points = (
                    min(points, spec.cap - value) if points > 0 else max(points, -spec.cap - value)
                )
                if points * spec.points <= 0:
                    continue
            awards[spec.key].append((points, at))
    return fit + sum(decayed(p, t, now, half) for a in awards.values() for p, t in a), awards


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(0, 4 * 24 * 60),  # minutes since the previous event
            st.sampled_from(["View", "View", "Price", "Price", "Unsub", "Other"]),
            st.sampled_from([100, 900]),
        ),
        max_size=40,
    ),
    cuts=st.lists(st.integers(0, 40), max_size=6),
    pauses=st.lists(st.integers(0, 3 * 24 * 60), min_size=7, max_size=7),
    b2b=st.booleans(),
    end=st.integers(0, 20 * 24 * 60),
)
def test_incremental_score_equals_a_recomputation_from_scratch(
    steps: list[tuple[int, str, int]], cuts: list[int], pauses: list[int], b2b: bool, end: int
) -> None:
    """Whatever the batches and whenever the score is read in between, the score is the one the
    whole history gives at the end; the reasons add up to it; no rule ever passes its cap."""
    # given: a stream of events in time order, cut into batches
    at, events = T0, []
    for gap, name, price in steps:
        at += timedelta(minutes=gap)
        events.append(track(name, at, price=price))
    bounds = sorted({0, len(events), *(c for c in cuts if c <= len(events))})
    person = contact(cnpj="1") if b2b else contact()
    state, reasons = ScoreState(1), []
    now = T0
    # when: each batch is scored at a moment after its last event, stored, and read back
    for i, (lo, hi) in enumerate(pairwise(bounds)):
        batch = events[lo:hi]
        last = batch[-1].timestamp
        room = events[hi].timestamp - last if hi < len(events) else timedelta(days=30)
        now = last + min(timedelta(minutes=pauses[i]), room)  # before the next batch's events
        outcome = run(PROPERTY_MODEL, state, person, batch, now)
        reasons += outcome.reasons
        state = ScoreState.from_json(
            state.to_json(),
            model_version=1,
            engagement=state.engagement,
            total=state.total,
            as_of=state.as_of,
        )
        for key, rule in state.rules.items():
            cap = next(r.rule.cap for r in PROPERTY_MODEL.engagement if r.key == key)
            if cap is not None:
                assert abs(rule_value(rule, now, PROPERTY_MODEL.half_life)) <= cap
    final = now + timedelta(minutes=end)
    reasons += run(PROPERTY_MODEL, state, person, [], final).reasons
    # then
    expected, awards = reference(events, 20 if b2b else 0, final)
    assert person.score == expected
    assert sum(r.points for r in reasons) == person.score
    for key, rule_awards in awards.items():
        cap = next(r.rule.cap for r in PROPERTY_MODEL.engagement if r.key == key)
        for n, (_, t) in enumerate(rule_awards):
            value = sum(decayed(p, s, t, PROPERTY_MODEL.half_life) for p, s in rule_awards[: n + 1])
            assert cap is None or abs(value) <= cap
