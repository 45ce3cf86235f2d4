"""Pure: quintiles with shared ties, and a workspace's quintile bounds (see :mod:`.rfm`)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


T = TypeVar("T", bound=_Ordered)


def needed(q: int, n: int) -> int:
    """How many of ``n`` values must be strictly below a value for it to reach quintile ``q``."""
    return -(-(q - 1) * n // 5)  # ceil((q - 1) * n / 5)


def lower_bounds(values: Sequence[T]) -> tuple[T | None, ...]:
    """The smallest value in each of quintiles 2..5 of ascending ``values``; None if it is empty.

    A value ``v`` is in quintile ``q`` or above when at least ``ceil((q - 1) * n / 5)``
    values are strictly below it, so the bound is the first value greater than the
    one at that index minus one.
    """
    n = len(values)
    bounds: list[T | None] = []
    for q in range(2, 6):
        need = needed(q, n)
        if need == 0:  # only when n == 0
            bounds.append(None)
            continue
        index = bisect_right(values, values[need - 1])
        bounds.append(values[index] if index < n else None)
    return tuple(bounds)


def grouped_lower_bounds(groups: Sequence[tuple[T, int]]) -> tuple[T | None, ...]:
    """:func:`lower_bounds` of the values given as ascending (value, how many) pairs."""
    n = sum(count for _, count in groups)
    bounds: list[T | None] = []
    for q in range(2, 6):
        need = needed(q, n)
        if need == 0:
            bounds.append(None)
            continue
        seen, bound = 0, None
        for position, (_, count) in enumerate(groups):
            seen += count
            if seen >= need:  # this group holds the value at index need - 1
                if position + 1 < len(groups):
                    bound = groups[position + 1][0]
                break
        bounds.append(bound)
    return tuple(bounds)


def quintile(value: T, bounds: Sequence[T | None]) -> int:
    """1 plus the number of bounds ``value`` reaches (empty quintiles are never reached)."""
    reached = 1
    for bound in bounds:
        if bound is None or value < bound:
            break
        reached += 1
    return reached


@dataclass(frozen=True)
class Boundaries:
    """A workspace's quintile bounds: each tuple holds the lower bounds of quintiles 2..5."""

    customers: int
    recency: tuple[datetime | None, ...]
    frequency: tuple[int | None, ...]
    monetary: tuple[int | None, ...]
