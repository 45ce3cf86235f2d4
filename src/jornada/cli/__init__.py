"""The ``jornada`` command line."""

from jornada.cli.commands import main

__all__ = ["main"]
