"""An accepted event on its way into the log: validated, normalised, time-corrected."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class EventRecord:
    """One Segment call after validation.

    ``properties`` holds a track/page/screen call's properties, or an
    identify/group call's traits. ``email`` and ``phone`` are already
    normalised; ``consent`` maps ``<channel>_<purpose>`` to granted or not.
    """

    message_id: str
    type: str
    timestamp: datetime
    received_at: datetime
    event: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    email: str | None = None
    phone: str | None = None
    timezone: str | None = None
    locale: str | None = None
    consent: dict[str, bool] | None = None
    index: int = 0
