"""What the tests' local servers share: a free loopback port, served from a daemon thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Loopback:
    """A local HTTP server: :meth:`serve` a handler class, :attr:`url` to reach it, :meth:`stop`."""

    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the origin it answers on."""
        assert self._server is not None, "not serving yet"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
