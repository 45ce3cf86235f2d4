"""Segments kept current as events arrive, and when time alone changes them.

The property test streams random events through ingestion in batches, moving
the clock and running the due re-checks between them, and checks after every
step that the stored membership equals a full recomputation in SQL.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from jornada.audience import (
    delete_segment,
    find_segment,
    save_custom_segment,
    segment_members,
    stored_members,
)
from jornada.audience.definition import parse
from jornada.audience.membership import clear_cache, dependencies
from jornada.audience.models import SegmentRecheck
from jornada.contacts import Contact
from jornada.db import Database
from jornada.events.models import Event
from jornada.flows import install, load_flow_file
from jornada.flows.models import FlowRun
from jornada.ingest import accept_messages
from jornada.ingest.service import lock_workspace, recheck_segments_due
from jornada.scheduler import tick
from tests.conftest import NOW, Shop, make_shop

SEGMENTS: list[dict[str, Any]] = [
    {
        "key": "browsing",
        "name": "Viewed twice in 2 days, no order in a day",
        "where": {
            "all": [
                {"event": "Product Viewed", "within": "2d", "count": {"gte": 2}},
                {"not": {"event": "Order Completed", "within": "1d"}},
            ]
        },
    },
    {
        "key": "lapsed",
        "name": "Bought, nothing for 3 days",
        "where": {
            "all": [{"fact": "orders_count", "gte": 1}, {"fact": "days_since_last_order", "gt": 3}]
        },
    },
    {
        "key": "big-spenders",
        "name": "Over 100 in 5 days",
        "where": {
            "event": "Order Completed",
            "within": "5d",
            "sum": {"property": "total", "gt": 100},
        },
    },
]


def _save(database: Database, shop: Shop, documents: list[dict[str, Any]]) -> None:
    with database.write() as session:
        for document in documents:
            save_custom_segment(session, shop.ref.id, document, now=NOW)
    clear_cache()


def _event(user: str, name: str, at: datetime, n: int, total: float = 0) -> dict[str, Any]:
    properties: dict[str, Any] = {"product_id": "p1"}
    if name == "Order Completed":
        properties = {"order_id": f"o-{user}-{n}", "total": f"{total:.2f}"}
    return {
        "type": "track",
        "userId": user,
        "event": name,
        "messageId": f"m-{user}-{n}",
        "timestamp": at.isoformat(),
        "properties": properties,
    }


def _segment_events(database: Database, shop: Shop, user: str) -> list[tuple[str, str, datetime]]:
    with database.read() as session:
        contact = session.scalar(
            select(Contact.id).where(Contact.workspace_id == shop.ref.id, Contact.user_id == user)
        )
        rows = session.execute(
            select(Event.event, Event.properties, Event.timestamp)
            .where(
                Event.workspace_id == shop.ref.id,
                Event.contact_id == contact,
                Event.event.in_(["Segment Entered", "Segment Exited"]),
            )
            .order_by(Event.timestamp, Event.id)
        )
        return [(name or "", props["segment"], at) for name, props, at in rows]


def _listening_flow(
    database: Database, shop: Shop, directory: Path, key: str, segment: str
) -> None:
    """A flow that e-mails whoever enters ``segment``."""
    flow = directory / f"{key}.yaml"
    flow.write_text(
        f"key: {key}\nname: {key}\n"
        f"trigger: {{segment: {segment}, when: entered}}\n"
        "steps:\n  - id: oi\n    send: {channel: email, template: welcome-brand-story}\n",
        encoding="utf-8",
    )
    with database.write() as session:
        install(session, shop.ref.id, load_flow_file(flow), now=NOW)


def test_entering_and_leaving_emit_events_and_enrol_flows(
    database: Database, tmp_path: Path
) -> None:
    """Views put ana in 'browsing' (a flow listening to it enrols her); time takes her out."""
    # given
    shop = make_shop(database)
    _listening_flow(database, shop, tmp_path, "browsing-nudge", "browsing")
    _save(database, shop, [SEGMENTS[0]])
    # when: two views an hour apart
    for n, hours in enumerate((2, 1)):
        accept_messages(
            database,
            shop.ref,
            [_event("ana", "Product Viewed", NOW - timedelta(hours=hours), n)],
            received_at=NOW - timedelta(hours=hours) + timedelta(minutes=1),
        )
    # then: she entered on the second view, and the flow took her in
    entered = _segment_events(database, shop, "ana")
    assert [(e, s) for e, s, _ in entered] == [("Segment Entered", "browsing")]
    with database.read() as session:
        assert (
            len(list(session.scalars(select(FlowRun).where(FlowRun.workspace_id == shop.ref.id))))
            == 1
        )
        assert len(stored_members(session, shop.ref.id, "browsing")) == 1
    # when: nothing happens for two days; the re-check is due when the first view leaves the window
    assert recheck_segments_due(database, NOW + timedelta(hours=20)) == 0
    assert recheck_segments_due(database, NOW + timedelta(days=2)) == 1
    # then
    events = _segment_events(database, shop, "ana")
    assert [(e, s) for e, s, _ in events] == [
        ("Segment Entered", "browsing"),
        ("Segment Exited", "browsing"),
    ]
    assert events[1][2] == NOW + timedelta(days=2)
    with database.read() as session:
        assert stored_members(session, shop.ref.id, "browsing") == set()


def test_a_time_condition_is_rechecked_when_it_can_flip(database: Database) -> None:
    """'No order in 3 days' is checked again 3 days after the order, not on a schedule."""
    # given
    shop = make_shop(database)
    _save(database, shop, [SEGMENTS[1]])
    accept_messages(
        database, shop.ref, [_event("bia", "Order Completed", NOW, 0, 50)], received_at=NOW
    )
    # when / then: not before the moment, exactly after it
    assert recheck_segments_due(database, NOW + timedelta(days=3)) == 0
    assert _segment_events(database, shop, "bia") == []
    tick(database, NOW + timedelta(days=3, seconds=2))  # the scheduler's pass does it
    assert _segment_events(database, shop, "bia")[0][:2] == ("Segment Entered", "lapsed")
    # a new order takes her out at once
    accept_messages(
        database,
        shop.ref,
        [_event("bia", "Order Completed", NOW + timedelta(days=4), 1, 50)],
        received_at=NOW + timedelta(days=4),
    )
    assert _segment_events(database, shop, "bia")[-1][:2] == ("Segment Exited", "lapsed")


def test_an_event_one_segment_reads_keeps_the_moment_another_needs(database: Database) -> None:
    """A contact has one re-check moment for all tracked segments: a view, which only
    'browsing' reads, must not push back the moment 'lapsed' can flip."""
    # given: an order; a day later its re-check (browsing's order window ends) changes nothing
    shop = make_shop(database)
    _save(database, shop, SEGMENTS[:2])
    accept_messages(
        database, shop.ref, [_event("bia", "Order Completed", NOW, 0, 50)], received_at=NOW
    )
    assert recheck_segments_due(database, NOW + timedelta(days=1, seconds=2)) == 0
    # when: a view on day 2, whose own window ends on day 4
    later = NOW + timedelta(days=2)
    accept_messages(
        database, shop.ref, [_event("bia", "Product Viewed", later, 1)], received_at=later
    )
    # then: she still enters 'lapsed' 3 days after the order
    assert recheck_segments_due(database, NOW + timedelta(days=3, seconds=2)) == 1
    assert _segment_events(database, shop, "bia")[-1][:2] == ("Segment Entered", "lapsed")


def test_the_schedulers_recheck_waits_for_a_batch_of_the_same_workspace(
    database: Database,
) -> None:
    """Both read, then write, a contact's memberships and re-check moment: never at once."""
    # given: bia's re-check is due, and a batch of her workspace is being stored
    shop = make_shop(database)
    _save(database, shop, [SEGMENTS[1]])
    accept_messages(
        database, shop.ref, [_event("bia", "Order Completed", NOW, 0, 50)], received_at=NOW
    )
    order: list[str] = []
    scheduler = threading.Thread(
        target=lambda: order.append(
            f"rechecked {recheck_segments_due(database, NOW + timedelta(days=3, seconds=2))}"
        )
    )
    with database.write() as session:
        lock_workspace(session, database, shop.ref.id)
        # when: the scheduler's pass starts meanwhile
        scheduler.start()
        time.sleep(0.5)  # room for it to run ahead, were it not held back
        order.append("batch committed")
    scheduler.join(timeout=60)
    # then: it ran after the batch, and did its work
    assert order == ["batch committed", "rechecked 1"]


def test_a_built_in_a_flow_listens_to_is_rechecked_by_the_scheduler(
    database: Database, tmp_path: Path
) -> None:
    """The scheduler's re-check of a contact covers the built-ins flows listen to."""
    # given: a win-back flow on 'inactive-30d' and a buyer
    shop = make_shop(database)
    _listening_flow(database, shop, tmp_path, "win-back", "inactive-30d")
    accept_messages(
        database, shop.ref, [_event("caio", "Order Completed", NOW, 0, 80)], received_at=NOW
    )
    clear_cache()  # the scheduler runs in its own process
    # when / then: 30 days on, the scheduler's pass puts him in and the flow takes him
    assert recheck_segments_due(database, NOW + timedelta(days=30)) == 0
    assert recheck_segments_due(database, NOW + timedelta(days=30, seconds=2)) == 1
    assert _segment_events(database, shop, "caio")[0][:2] == ("Segment Entered", "inactive-30d")
    with database.read() as session:
        assert session.scalar(select(FlowRun.contact_id).where(FlowRun.workspace_id == shop.ref.id))


def test_only_the_segments_an_event_can_change_depend_on_it() -> None:
    """What each kind of condition listens to."""
    assert dependencies(parse(SEGMENTS[0]["where"])) == {"Product Viewed", "Order Completed"}
    assert "Order Completed" in dependencies(parse(SEGMENTS[1]["where"]))
    assert "Product Viewed" not in dependencies(parse(SEGMENTS[1]["where"]))
    assert dependencies(parse({"trait": "plan", "eq": "pro"})) == {"identify"}
    assert dependencies(parse({"consent": "email_marketing"})) == {"identify"}
    assert dependencies(parse({"tag": "vip"})) == {"*"}


STEP = st.fixed_dictionaries(
    {
        "advance_hours": st.sampled_from([0, 1, 6, 12, 24, 30, 49, 73]),
        "events": st.lists(
            st.tuples(
                st.sampled_from(["ana", "bia", "caio"]),
                st.sampled_from(["Product Viewed", "Product Viewed", "Order Completed"]),
                st.sampled_from([0, 1, 5, 23, 25]),  # hours before the batch arrives
                st.sampled_from([20.0, 60.0, 99.5]),
            ),
            max_size=4,
        ),
    }
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=6))
def test_stored_membership_follows_a_stream_of_events(
    database: Database, steps: list[dict[str, Any]]
) -> None:
    """After every batch and every due re-check, stored members = a full recomputation."""
    shop = make_shop(database)
    _save(database, shop, SEGMENTS)
    now, n = NOW, 0
    for step in steps:
        now += timedelta(hours=step["advance_hours"])
        recheck_segments_due(database, now, limit=10_000)
        batch = []
        for user, name, hours, total in step["events"]:
            n += 1
            batch.append(_event(user, name, now - timedelta(hours=hours), n, total))
        if batch:
            accept_messages(database, shop.ref, batch, received_at=now, trigger_flows=False)
        with database.read() as session:
            for document in SEGMENTS:
                definition = find_segment(session, shop.ref.id, document["key"])
                members, _ = segment_members(session, shop.ref.id, definition, now, limit=500)
                assert stored_members(session, shop.ref.id, document["key"]) == {
                    m.id for m in members
                }, (document["key"], now)


def _refill(database: Database, at: datetime) -> None:
    """The scheduler's passes, a few contacts each, until nothing is due at ``at``."""
    for _ in range(50):
        recheck_segments_due(database, at, limit=3)
        with database.read() as session:
            if not session.scalar(
                select(SegmentRecheck.contact_id).where(SegmentRecheck.due_at <= at).limit(1)
            ):
                return
    raise AssertionError("re-checks still due after 50 passes")


def _stored_equals_computed(database: Database, shop: Shop, key: str, at: datetime) -> set[str]:
    with database.read() as session:
        definition = find_segment(session, shop.ref.id, key)
        members, _ = segment_members(session, shop.ref.id, definition, at, limit=500)
        stored = stored_members(session, shop.ref.id, key)
    assert stored == {m.id for m in members}, key
    return stored


def test_a_saved_segment_fills_with_the_contacts_already_there(database: Database) -> None:
    """Saving (or editing) a segment fills its stored members, and those of the segments that
    refer to it, without waiting for each contact's next event; deleting forgets them."""
    # given: seven buyers (one or two orders) and three browsers, before any segment exists
    shop = make_shop(database)
    batch = [_event(f"u{i}", "Order Completed", NOW - timedelta(days=1), i, 50) for i in range(7)]
    batch += [_event(f"u{i}", "Order Completed", NOW, 10 + i, 50) for i in range(3)]
    batch += [_event(f"v{i}", "Product Viewed", NOW, 20 + i) for i in range(3)]
    accept_messages(database, shop.ref, batch, received_at=NOW, trigger_flows=False)
    buyers = {"key": "buyers", "name": "Buyers", "where": {"fact": "orders_count", "gte": 1}}
    loyal = {"key": "loyal", "name": "Loyal", "where": {"all": [{"segment": "buyers"}]}}
    # when
    _save(database, shop, [buyers, loyal])
    _refill(database, NOW)
    # then
    assert len(_stored_equals_computed(database, shop, "buyers", NOW)) == 7
    assert len(_stored_equals_computed(database, shop, "loyal", NOW)) == 7
    assert [e[:2] for e in _segment_events(database, shop, "u0")] == [
        ("Segment Entered", "buyers"),
        ("Segment Entered", "loyal"),
    ]
    assert _segment_events(database, shop, "v0") == []
    # when: an edit of the segment "loyal" refers to
    later = NOW + timedelta(hours=1)
    with database.write() as session:
        save_custom_segment(
            session, shop.ref.id, {**buyers, "where": {"fact": "orders_count", "gte": 2}}, now=later
        )
    _refill(database, later)
    # then: both follow it, the ones who left with an exit event
    assert len(_stored_equals_computed(database, shop, "buyers", later)) == 3
    assert len(_stored_equals_computed(database, shop, "loyal", later)) == 3
    assert _segment_events(database, shop, "u6")[-1][:2] == ("Segment Exited", "loyal")
    # when / then: deleting forgets the stored members
    with database.write() as session:
        delete_segment(session, shop.ref.id, "loyal", now=later)
        assert stored_members(session, shop.ref.id, "loyal") == set()
