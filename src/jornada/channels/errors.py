"""Delivery errors: every provider failure, mapped where it happens, is one of these.

Adapters translate foreign exceptions (``smtplib``, ``OSError``, ``httpx``) at
the boundary with ``raise … from exc``; nothing above them sees a foreign one::

    JornadaError
    └── DeliveryError                 502  a provider did not take a message
        ├── TransientDeliveryError         try again later (4xx SMTP, 5xx HTTP)
        │   └── ProviderUnavailable        the provider itself is unreachable or refuses us
        │                                  (connection refused, timeout, auth): the messages
        │                                  stay queued and an integration incident opens
        └── PermanentDeliveryError         this message will never go (5xx SMTP, 4xx HTTP);
                                           ``bounce`` when the recipient does not exist
"""

from __future__ import annotations

from typing import Any

from jornada.errors import JornadaError


class DeliveryError(JornadaError):
    """A provider did not take a message; ``message`` says what it answered."""

    code = "delivery_failed"
    http_status = 502


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: the message stays queued with a backoff."""

    code = "delivery_transient"


class ProviderUnavailable(TransientDeliveryError):
    """The provider is down or refuses the workspace's credentials; no message is at fault."""

    code = "provider_unavailable"


class PermanentDeliveryError(DeliveryError):
    """This message will never be accepted; ``bounce``: the address itself is rejected.

    ``suppress``: the suppression list reason the address gets (``hard_bounce`` for a
    bounce; ``stop`` when the provider says the recipient opted out).
    """

    code = "delivery_permanent"

    def __init__(
        self, message: str, *, bounce: bool = False, suppress: str | None = None, **data: Any
    ) -> None:
        super().__init__(message, **data)
        self.bounce = bounce
        self.suppress = suppress or ("hard_bounce" if bounce else None)


def describe_answer(status: int, code: int | None, text: str, more: Any = None) -> str:
    """A provider's error answer in one line: ``HTTP 400 code 21211: text (more)``."""
    said = f"HTTP {status}" + (f" code {code}" if code is not None else "") + f": {text}"
    return f"{said} ({more})" if more else said
