"""The demo store: a deterministic synthetic Brazilian online store for the demo workspace."""

from jornada.demo.store import demo_messages

__all__ = ["demo_messages"]
