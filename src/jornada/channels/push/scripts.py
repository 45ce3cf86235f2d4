"""The JavaScript Jornada serves for Web Push: the service worker and the shop's helper."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

SCRIPTS = ("sw.js", "subscribe.js")


@cache
def script(name: str) -> str:
    """The source of ``sw.js`` (shows pushes, opens their page) or ``subscribe.js``."""
    if name not in SCRIPTS:
        raise KeyError(name)
    return (files("jornada.channels.push") / name).read_text("utf-8")
