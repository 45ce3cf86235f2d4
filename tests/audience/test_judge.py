"""Property: the judge incremental membership uses says what the predicate and
``next_change`` say, for random conditions (event measures, windows, properties,
profile facts, nesting) over random contacts and event histories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jornada.audience import to_predicate
from jornada.audience.definition import parse
from jornada.audience.judge import Timeline, judge
from jornada.audience.membership import RECHECK_MARGIN, next_change
from tests.audience.test_compile_property import _row, contacts
from tests.audience.test_event_conditions import conditions, event_leaves, events
from tests.conftest import NOW


@dataclass(frozen=True)
class _Event:
    event: str | None
    timestamp: datetime
    properties: dict[str, Any] | None


@settings(max_examples=400, deadline=None)
@given(
    person=contacts(),
    history=st.lists(events, max_size=10),
    where=st.one_of(event_leaves(), conditions),  # lone event leaves: their edges, often
    naive=st.booleans(),
)
def test_the_judge_agrees_with_the_predicate_and_next_change(
    person: dict[str, Any], history: list[dict[str, Any]], where: dict[str, Any], naive: bool
) -> None:
    # given: the history in the order a query might return it, times naive as SQLite's
    contact = _row("w", person)
    seen = [
        _Event(e["event"], e["at"].replace(tzinfo=None) if naive else e["at"], e["properties"])
        for e in history
    ]
    condition = parse(where)

    # when
    inside, due = judge(condition)(contact, NOW, Timeline(seen, NOW.tzinfo))

    # then
    assert inside == to_predicate(condition)(contact, NOW, seen)
    expected = next_change(condition, contact, NOW, seen)  # the re-check: just past the flip
    assert (None if due is None else due + RECHECK_MARGIN) == expected
