"""The append-only event log and the canonical event vocabulary."""

from jornada.events import canonical
from jornada.events.models import Event
from jornada.events.record import EventRecord

__all__ = ["Event", "EventRecord", "canonical"]
