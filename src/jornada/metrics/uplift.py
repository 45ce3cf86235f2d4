"""Pure: uplift of conversion rate over a holdout group, with a 95% interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Uplift:
    treated_rate: float
    control_rate: float
    difference: float  # treated - control, in rate points (0.05 = +5 points)
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 6) for k, v in self.__dict__.items()}


def _wilson(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def uplift(
    treated_conversions: int, treated: int, control_conversions: int, control: int
) -> Uplift | None:
    """Difference of conversion rates with Newcombe's hybrid Wilson interval (sound for small groups).

    None when either group is empty: there is nothing to compare.
    """
    if treated == 0 or control == 0:
        return None
    p1, p2 = treated_conversions / treated, control_conversions / control
    l1, u1 = _wilson(treated_conversions, treated)
    l2, u2 = _wilson(control_conversions, control)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Uplift(p1, p2, d, low, high)
