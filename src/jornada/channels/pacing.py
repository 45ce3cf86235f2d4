"""Per-provider limits: how much of the queue a pass may take, and a rate shared by connections.

A provider may have a ``daily_cap`` (messages per day, the day of the
workspace's time zone) and a ``rate_per_second``. The claim takes no more of a
(workspace, channel) group than :func:`claim_budget` allows; the connections
of the group then share one :class:`Pacer`, so together they never go faster
than the rate. The arithmetic is pure and takes the time as an argument; the
pacer takes its clock and its sleep, so tests run it without sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

NS = 1_000_000_000  # nanoseconds in a second: the pacer counts in whole nanoseconds
#: About how long a rate-limited group's share of one pass takes to send: far inside the
#: claim's lease, and short, since the pass's other groups wait for it.
PACED_PASS = timedelta(seconds=10)


def day_bounds(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """Where the day containing ``now`` starts and the next one starts, in ``zone``'s calendar.

    Both are returned in ``now``'s time zone (UTC in Jornada).
    """
    local = now.astimezone(ZoneInfo(zone))
    start = datetime.combine(local.date(), clock_time(0), tzinfo=local.tzinfo)
    following = datetime.combine(
        local.date() + timedelta(days=1), clock_time(0), tzinfo=local.tzinfo
    )
    return start.astimezone(now.tzinfo), following.astimezone(now.tzinfo)


def claim_budget(
    *, limit: int, daily_cap: int | None, used_today: int, rate_per_second: float | None
) -> int:
    """How many of a group's due messages one pass may claim.

    ``used_today``: messages of the group already sent (or being sent) today;
    ``limit``: what the pass may still take overall. A rate limit bounds the
    share to what the rate lets out in :data:`PACED_PASS` (at least one).
    """
    budget = max(limit, 0)
    if daily_cap is not None:
        budget = min(budget, max(daily_cap - used_today, 0))
    if rate_per_second is not None:
        budget = min(budget, max(1, math.floor(rate_per_second * PACED_PASS.total_seconds())))
    return budget


def interval_ns(rate_per_second: float) -> int:
    """Nanoseconds between two sends at ``rate_per_second``, rounded up (never faster)."""
    if not rate_per_second > 0:
        raise ValueError(f"a rate must be positive, not {rate_per_second!r}")
    return math.ceil(NS / rate_per_second)


def next_slot(last: int | None, now: int, interval: int) -> int:
    """When the next send may go: now, unless that is less than ``interval`` after the last one."""
    return now if last is None else max(now, last + interval)


class Pacer:
    """One rate shared by every connection of a group: ``wait()`` before each send.

    Each call reserves the next free slot (one ``interval`` after the previous
    reservation) under a lock and sleeps until it outside the lock, so several
    threads interleave at the rate instead of each going at it. ``clock``
    returns nanoseconds (``time.monotonic_ns``); ``sleep`` takes seconds.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate_per_second = rate_per_second
        self._interval = interval_ns(rate_per_second)
        self._clock, self._sleep = clock, sleep
        self._last: int | None = None
        self._lock = threading.Lock()

    def wait(self) -> int:
        """Block until this caller's slot; returns the slot (in ``clock``'s nanoseconds)."""
        with self._lock:
            slot = next_slot(self._last, self._clock(), self._interval)
            self._last = slot
        delay = slot - self._clock()
        if delay > 0:
            self._sleep(delay / NS)
        return slot


class Pacers:
    """The pacers of a worker's groups, kept from one pass to the next.

    Kept across passes so a new pass does not start with a burst right after
    the last one's sends. Per process: several ``jornada worker`` processes
    each pace to the full rate (give each a share of it, or run one courier).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock, self._sleep = clock, sleep
        self._pacers: dict[tuple[str, str], Pacer] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], rate_per_second: float | None) -> Pacer | None:
        """The group's pacer at this rate (a changed rate starts a new one); None: no limit."""
        if rate_per_second is None:
            return None
        with self._lock:
            pacer = self._pacers.get(key)
            if pacer is None or pacer.rate_per_second != rate_per_second:
                pacer = Pacer(rate_per_second, clock=self._clock, sleep=self._sleep)
                self._pacers[key] = pacer
            return pacer
