"""The one exception tree of Jornada.

Every error a user can cause carries a stable ``code``, the HTTP status the
API answers with, and the ``field`` it is about, so an API client, the CLI
and the UI can all say *which field and why*::

    JornadaError
    ├── InvalidInput          400  a value is missing or malformed
    │   └── PayloadTooLarge   413  a message or batch is over its size limit
    ├── Unauthorized          401  a key is missing or wrong
    ├── Forbidden             403
    ├── NotFound              404
    └── Conflict              409  the thing exists already
"""

from __future__ import annotations

from typing import Any, ClassVar


class JornadaError(Exception):
    """Root of every error Jornada raises on purpose."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the API answers with."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        if self.data:
            body["data"] = self.data
        return body


class InvalidInput(JornadaError):
    """A value is missing or malformed; ``field`` names it."""

    code = "invalid_input"
    http_status = 400


class PayloadTooLarge(InvalidInput):
    """A message or a batch is larger than the limit."""

    code = "payload_too_large"
    http_status = 413


class Unauthorized(JornadaError):
    """No key, or a key that matches no workspace."""

    code = "unauthorized"
    http_status = 401


class Forbidden(JornadaError):
    code = "forbidden"
    http_status = 403


class NotFound(JornadaError):
    code = "not_found"
    http_status = 404


class Conflict(JornadaError):
    code = "conflict"
    http_status = 409
