"""Headless Chromium (Debian's package) driven by Playwright, and a shop's own site to load.

``make test`` installs Chromium when it is missing (``JORNADA_TEST_CHROMIUM``
names another binary). The flags keep Chromium off the network this machine
does not have (sync, component updates, background requests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

from tests.support.loopback import Loopback, QuietHandler

CHROMIUM = Path(os.environ.get("JORNADA_TEST_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; a clear failure when the binary is missing."""
    if not CHROMIUM.exists():
        raise AssertionError(
            f"the browser tests need Chromium at {CHROMIUM}: run `make test` (it installs "
            "Debian's chromium package) or set JORNADA_TEST_CHROMIUM"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ShopSite(Loopback):
    """A shop's own site on another loopback port: pages by path (``text/html`` or JS)."""

    pages: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return self.url

    def start(self) -> ShopSite:
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                page = site.pages.get(self.path.split("?")[0])
                body = (page or "not found").encode()
                self.send_response(200 if page is not None else 404)
                kind = "application/javascript" if self.path.endswith(".js") else "text/html"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.serve(Handler)
        return self
