"""The pure flow engine: steps, waits, branches and splits at exact virtual times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from jornada.flows.conditions import ConditionError, Facts, check, evaluate
from jornada.flows.decisions import AwaitEvent, Finish, RunState, SendMessage, Sleep
from jornada.flows.definition import FlowDocument
from jornada.flows.engine import START, TIMER, Wake, advance, split_bucket

NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 12:00 in São Paulo, a Monday


def flow(**overrides: Any) -> FlowDocument:
    doc: dict[str, Any] = {
        "key": "cart",
        "name": "Cart",
        "trigger": {"event": "Checkout Started"},
        "steps": [
            {"id": "wait-1h", "wait": "1h"},
            {"id": "email", "send": {"channel": "email", "template": "cart"}},
            {"id": "click", "wait_for": {"event": "Message Clicked", "timeout": "2h"}},
            {"id": "call", "task": {"type": "call", "title": "Ligar", "sla": "15m"}},
        ],
    }
    doc.update(overrides)
    return FlowDocument.model_validate(doc)


def run(
    doc: FlowDocument,
    state: RunState,
    now: datetime,
    wake: Wake = TIMER,
    facts: Facts | None = None,
    tz: str = "America/Sao_Paulo",
) -> Any:
    return advance(doc, state, facts or Facts(), now=now, wake=wake, contact_id="c1", timezone=tz)


def test_happy_path_at_exact_times() -> None:
    """Start → sleep 1 h → email → wait for click → click → task due 15 min later → completed."""
    doc = flow()
    first = run(doc, RunState(), NOW, START)
    assert first.decisions == [Sleep("wait-1h", NOW + timedelta(hours=1))]
    second = run(doc, first.state, NOW + timedelta(hours=1))
    assert second.decisions == [
        SendMessage("email", "email", "cart", "marketing"),
        AwaitEvent("click", "Message Clicked", NOW + timedelta(hours=3)),
    ]
    clicked_at = NOW + timedelta(hours=2)
    third = run(doc, second.state, clicked_at, Wake("event", "Message Clicked", {"url": "x"}))
    task = third.decisions[0]
    assert task.due_at == clicked_at + timedelta(minutes=15)
    assert third.decisions[-1] == Finish("completed")
    assert third.state.vars["click"] == {"status": "received", "properties": {"url": "x"}}


def test_wait_for_times_out_to_its_exit() -> None:
    """No click within 2 h: the run ends with reason timeout and no task."""
    doc = flow()
    state = run(doc, run(doc, RunState(), NOW, START).state, NOW + timedelta(hours=1)).state
    timeout = run(doc, state, NOW + timedelta(hours=3))
    assert timeout.decisions == [Finish("timeout", "click")]


def test_an_unrelated_event_does_not_move_a_waiting_run() -> None:
    doc = flow()
    state = run(doc, RunState(), NOW, START).state
    assert run(doc, state, NOW, Wake("event", "Message Clicked")).decisions == []


def test_branch_and_end() -> None:
    """A branch on a commerce fact picks the arm; `end` names the reason."""
    doc = flow(
        steps=[
            {"id": "rich", "branch": {"if": {"fact": "total_spent", "gt": "300"}, "else": "stop"}},
            {"id": "email", "send": {"channel": "email", "template": "vip"}, "next": "end"},
            {"id": "stop", "end": "not-eligible"},
        ]
    )
    rich = run(doc, RunState(), NOW, START, Facts(facts={"total_spent": "300.01"}))
    poor = run(doc, RunState(), NOW, START, Facts(facts={"total_spent": "300.00"}))
    assert [type(d).__name__ for d in rich.decisions] == ["SendMessage", "Finish"]
    assert poor.decisions == [Finish("not-eligible", "stop")]


def test_split_is_deterministic_and_roughly_weighted() -> None:
    """The same contact always takes the same arm; arms get their share of contacts."""
    assert split_bucket("c1", "f", "s") == split_bucket("c1", "f", "s")
    buckets = [split_bucket(f"c{i}", "f", "s") for i in range(10_000)]
    share = sum(b < 20 for b in buckets) / len(buckets)
    assert 0.18 < share < 0.22


def test_wait_until_local_time_next_business_day() -> None:
    """Friday 21:00 in São Paulo, wait until 09:00 on weekdays → Monday 09:00 local (12:00 UTC)."""
    doc = flow(
        steps=[
            {
                "id": "morning",
                "wait_until": {"time": "09:00", "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
            }
        ]
    )
    friday_night = datetime(2026, 11, 7, 0, 0, tzinfo=UTC)  # Fri 21:00 -03:00
    outcome = run(doc, RunState(), friday_night, START)
    assert outcome.decisions == [Sleep("morning", datetime(2026, 11, 9, 12, 0, tzinfo=UTC))]


def test_wait_until_uses_the_contacts_zone() -> None:
    doc = flow(steps=[{"id": "m", "wait_until": {"time": "09:00"}}])
    outcome = run(doc, RunState(), NOW, START, tz="America/Manaus")  # 11:00 there
    assert outcome.decisions == [Sleep("m", datetime(2026, 11, 3, 13, 0, tzinfo=UTC))]


def test_business_hours_pass_through_inside_and_wait_outside() -> None:
    doc = flow(
        steps=[
            {"id": "bh", "wait_business_hours": {}},
            {"id": "call", "send": {"channel": "voice", "template": "t"}},
        ]
    )
    inside = run(doc, RunState(), NOW, START)
    assert isinstance(inside.decisions[0], SendMessage)
    sunday = datetime(2026, 11, 8, 15, 0, tzinfo=UTC)
    outside = run(doc, RunState(), sunday, START)
    assert outside.decisions == [Sleep("bh", datetime(2026, 11, 9, 12, 0, tzinfo=UTC))]


def test_a_loop_without_wait_is_stopped() -> None:
    doc = flow(steps=[{"id": "a", "score": 1, "next": "b"}, {"id": "b", "score": 1, "next": "a"}])
    outcome = run(doc, RunState(), NOW, START)
    assert outcome.decisions[-1].reason == "exited:loop"


@pytest.mark.parametrize(
    ("_case", "steps", "message"),
    [
        ("two actions", [{"id": "a", "wait": "1h", "score": 2}], "exactly one action"),
        ("no action", [{"id": "a"}], "exactly one action"),
        ("unknown target", [{"id": "a", "score": 1, "next": "zzz"}], "'zzz', which is no step id"),
        ("duplicate id", [{"id": "a", "score": 1}, {"id": "a", "score": 2}], "repeated: a"),
        ("bad duration", [{"id": "a", "wait": "soon"}], "not a duration"),
    ],
)
def test_definition_errors_name_the_problem(_case: str, steps: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        flow(steps=steps)


def test_conditions() -> None:
    facts = Facts(
        traits={"lead_type": "b2b", "company": {"cnpj": "1"}},
        tags=frozenset({"vip"}),
        consent={"email_marketing": True},
        properties={"value": "501.00"},
        vars={"nps": 9},
    )
    assert evaluate(
        {
            "all": [
                {"trait": "lead_type", "eq": "b2b"},
                {"tag": "vip"},
                {"consent": "email_marketing"},
                {"prop": "value", "gt": 500},
                {"var": "nps", "gte": 9},
                {"trait": "company.cnpj", "exists": True},
            ]
        },
        facts,
    )
    assert not evaluate({"any": [{"consent": "sms_marketing"}, {"not": {"tag": "vip"}}]}, facts)
    with pytest.raises(ConditionError, match="starts with"):
        check({"wat": 1}, "steps[0].branch.if")
