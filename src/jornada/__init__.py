"""Jornada: customer engagement for online stores."""

__version__ = "0.1.0"
