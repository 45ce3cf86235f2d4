"""The simulator: the real engine, ingestion and scheduler on a temporary database and a virtual clock."""

from jornada.simulation.simulator import Effect, simulate

__all__ = ["Effect", "simulate"]
