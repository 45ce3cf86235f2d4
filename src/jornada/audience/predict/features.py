"""What the model sees of a contact at a cutoff time, and what happened after it; pure.

Everything is computed from the history *before* the cutoff, so a snapshot at a
past cutoff sees exactly what the shop knew then; the label is whether a
counted order (not cancelled or refunded) was placed in ``[cutoff, cutoff +
horizon)``. :mod:`jornada.audience.predict.history` reads the inputs from the
database; this module only does arithmetic on them.

Times are UTC seconds since the epoch (floats), so thousands of contacts and
several cutoffs stay cheap.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

DAY = 86_400.0
SAME_OCCASION = DAY  # orders less than a day apart are one purchase occasion for intervals
SHRINK = 1.0  # weight, in intervals, of the workspace's typical interval in a contact's own
LOOKBACK_DAYS = 365  # event activity older than this before a cutoff is not read


@dataclass(frozen=True)
class Feature:
    """A model input: ``log`` applies log1p before the curve, ``clip`` bounds the value first."""

    name: str
    description: str
    log: bool = True
    clip: tuple[float, float] | None = None


#: The event counts read per cutoff, in the order of :data:`WINDOW_COLUMNS`.
VIEW_EVENTS = ("Product Viewed", "Product List Viewed", "Products Searched")
CART_EVENTS = ("Product Added", "Checkout Started", "Cart Viewed")
ENGAGEMENT_EVENTS = ("Message Opened", "Message Clicked", "Message Replied")
REVIEW_EVENT = "Survey Answered"
#: (feature name, event names or "page" for page/screen calls, days before the cutoff)
WINDOW_COLUMNS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("product_views_7d", VIEW_EVENTS, 7),
    ("product_views_30d", VIEW_EVENTS, 30),
    ("product_views_90d", VIEW_EVENTS, 90),
    ("cart_activity_7d", CART_EVENTS, 7),
    ("cart_activity_30d", CART_EVENTS, 30),
    ("page_views_30d", ("page",), 30),
    ("engagement_30d", ENGAGEMENT_EVENTS, 30),
    ("engagement_90d", ENGAGEMENT_EVENTS, 90),
)

FEATURES: tuple[Feature, ...] = (
    Feature("orders", "orders placed before the cutoff, not cancelled or refunded"),
    Feature("days_since_last_order", "days since the last order (missing without orders)"),
    Feature("days_since_first_seen", "days since the contact's first event (tenure)"),
    Feature("total_spent", "money spent on those orders, in the shop's currency"),
    Feature("average_gap_days", "mean days between purchase occasions (needs two)"),
    Feature(
        "days_until_usual_date",
        "last order plus the usual interval, minus the cutoff, in days (negative: overdue)",
        log=False,
        clip=(-365.0, 365.0),
    ),
    Feature("cancelled_orders", "orders cancelled or refunded"),
    Feature("last_review_score", "score of the last survey answered (missing: none)", log=False),
    Feature("days_since_last_event", "days since any event, within a year (missing: none)"),
    *(
        Feature(name, f"{' / '.join(events)} in the last {days} days")
        for name, events, days in WINDOW_COLUMNS
    ),
)
FEATURE_NAMES = tuple(f.name for f in FEATURES)


@dataclass
class History:
    """A workspace's history as the features need it, read once for every cutoff.

    ``orders`` holds, per contact, ``(placed_at, total in cents, counted)`` sorted by
    time; ``reviews`` holds ``(answered_at, score)`` sorted by time.
    """

    contact_ids: list[str]
    first_seen: list[float]
    orders: dict[str, list[tuple[float, int, bool]]] = field(default_factory=dict)
    reviews: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    currency_units: int = 100  # cents per unit of ``total_spent``


#: per contact, the WINDOW_COLUMNS counts and the last event time (or None) before a cutoff
Windows = Mapping[str, tuple[tuple[int, ...], float | None]]


@dataclass(frozen=True)
class Interval:
    """The expected days between a contact's orders, or why there is none."""

    days: float | None
    reason: str | None


@dataclass(frozen=True)
class Snapshot:
    """Every contact known at ``cutoff``: features, label and what the date estimate needs."""

    cutoff: float
    horizon_days: int
    contact_ids: list[str]
    matrix: NDArray[np.float64]
    y: NDArray[np.int8]
    last_order: NDArray[np.float64]  # epoch seconds of the last counted order, NaN without one
    next_order: NDArray[np.float64]  # first counted order at or after the cutoff, NaN: none seen
    intervals: list[Interval]
    heuristic_days: NDArray[np.float64]  # (last - first) / (orders - 1), the flows' old estimate

    @property
    def positives(self) -> int:
        return int(self.y.sum())


def occasions(times: Sequence[float]) -> list[float]:
    """Order times with those less than a day after the previous kept one folded into it."""
    out: list[float] = []
    for t in times:
        if not out or t - out[-1] >= SAME_OCCASION:
            out.append(t)
    return out


def own_interval(times: Sequence[float]) -> float | None:
    """Mean days between purchase occasions; None with fewer than two occasions."""
    days = occasions(times)
    if len(days) < 2:
        return None
    return (days[-1] - days[0]) / (len(days) - 1) / DAY


def interval(times: Sequence[float], prior_days: float | None) -> Interval:
    """The contact's own mean interval, shrunk toward the workspace's typical one.

    ``(n · own + SHRINK · prior) / (n + SHRINK)`` with ``n`` the contact's number of
    intervals: one interval is half its own and half the shop's; ten are almost
    entirely its own. Without two purchase occasions there is no interval, and the
    reason says why instead of inventing a date.
    """
    if not times:
        return Interval(None, "no orders yet")
    days = occasions(times)
    if len(days) < 2:
        reason = "one order: no interval between orders yet"
        if len(times) > 1:
            reason = "orders on one day only: no interval between orders yet"
        return Interval(None, reason)
    own = (days[-1] - days[0]) / (len(days) - 1) / DAY
    n = len(days) - 1
    if prior_days is None:
        return Interval(own, None)
    return Interval((n * own + SHRINK * prior_days) / (n + SHRINK), None)


def snapshot(history: History, windows: Windows, cutoff: float, horizon_days: int) -> Snapshot:
    """Features of every contact first seen before ``cutoff``, and its label over the horizon."""
    end = cutoff + horizon_days * DAY
    ids: list[str] = []
    rows: list[list[float]] = []
    labels: list[int] = []
    last_orders: list[float] = []
    next_orders: list[float] = []
    before_by_row: list[list[float]] = []
    heuristic: list[float] = []
    nan = math.nan
    empty_windows: tuple[tuple[int, ...], float | None] = ((0,) * len(WINDOW_COLUMNS), None)
    for cid, first in zip(history.contact_ids, history.first_seen, strict=True):
        if first >= cutoff:
            continue
        orders = history.orders.get(cid, [])
        split = bisect_left(orders, (cutoff,))
        before = [o for o in orders[:split] if o[2]]
        after = [o for o in orders[split:] if o[2]]
        times = [o[0] for o in before]
        cancelled = sum(1 for o in orders[:split] if not o[2])
        spent = sum(o[1] for o in before) / history.currency_units
        last = times[-1] if times else nan
        own = own_interval(times)
        reviews = history.reviews.get(cid, [])
        r = bisect_left(reviews, (cutoff,))
        counts, last_event = windows.get(cid, empty_windows)
        ids.append(cid)
        before_by_row.append(times)
        rows.append(
            [
                float(len(times)),
                (cutoff - last) / DAY if times else nan,
                (cutoff - first) / DAY,
                spent,
                own if own is not None else nan,
                nan,  # days_until_usual_date, once the shop's typical interval is known
                float(cancelled),
                reviews[r - 1][1] if r else nan,
                (cutoff - last_event) / DAY if last_event is not None else nan,
                *(float(c) for c in counts),
            ]
        )
        labels.append(1 if after and after[0][0] < end else 0)
        last_orders.append(last)
        next_orders.append(after[0][0] if after else nan)
        heuristic.append((times[-1] - times[0]) / (len(times) - 1) / DAY if len(times) > 1 else nan)
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
    own_days = matrix[:, FEATURE_NAMES.index("average_gap_days")]
    seen = own_days[~np.isnan(own_days)]
    prior = float(np.median(seen)) if seen.size else None
    intervals = [interval(times, prior) for times in before_by_row]
    until = FEATURE_NAMES.index("days_until_usual_date")
    for i, (gap, last) in enumerate(zip(intervals, last_orders, strict=True)):
        if gap.days is not None:
            matrix[i, until] = (last + gap.days * DAY - cutoff) / DAY
    return Snapshot(
        cutoff=cutoff,
        horizon_days=horizon_days,
        contact_ids=ids,
        matrix=matrix,
        y=np.asarray(labels, dtype=np.int8),
        last_order=np.asarray(last_orders, dtype=np.float64),
        next_order=np.asarray(next_orders, dtype=np.float64),
        intervals=intervals,
        heuristic_days=np.asarray(heuristic, dtype=np.float64),
    )
