"""Pure: durations as people write them in flow files ("90s", "15m", "1h", "2d12h", "1w")."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str | int) -> timedelta:
    """``"1h30m"`` → 1:30:00. A bare number is seconds. Raises ValueError with the accepted form."""
    if isinstance(text, int) and not isinstance(text, bool):
        return timedelta(seconds=text)
    value = str(text).strip().lower().replace(" ", "")
    sign = -1 if value.startswith("-") else 1
    value = value.lstrip("+-")
    if not value or _PART.sub("", value):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h, 2d12h or 1w")
    total = timedelta()
    for amount, unit in _PART.findall(value):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    return sign * total
