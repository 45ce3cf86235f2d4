"""One connection's work in a delivery pass, and what became of each message.

Shared by the sending threads (``jornada.channels.delivery``) and the e-mail
sender processes (``jornada.channels.email.processes``): the same loop, the same
mapping of provider errors to outcomes, wherever it runs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from jornada.channels.email.compose import Outbound
from jornada.channels.errors import (
    PermanentDeliveryError,
    ProviderUnavailable,
    TransientDeliveryError,
)
from jornada.channels.pacing import Pacer


class Transport(Protocol):
    """One connection to a provider; ``send`` returns the provider's id for the message."""

    def send(self, message: Outbound, now: datetime) -> str: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Sent:
    provider_id: str


@dataclass(frozen=True)
class Retry:
    error: str


@dataclass(frozen=True)
class Unavailable:
    error: str


@dataclass(frozen=True)
class Failed:
    error: str
    bounce: bool = False
    suppress: str | None = None  # the suppression list reason, if the address goes on it


Outcome = Sent | Retry | Unavailable | Failed
#: A connection's report: outcomes by message id, and the provider error that stopped it.
Report = tuple[dict[int, Outcome], list[str]]


def send_all(
    transport: Transport, queue: deque[Outbound], now: datetime, pacer: Pacer | None = None
) -> Report:
    """Take messages from ``queue`` until none is left or the provider is unreachable,
    then close ``transport``. The message in hand when the provider is unreachable is
    ``Unavailable``; the others stay in the queue for the other connections.
    """
    outcomes: dict[int, Outcome] = {}
    try:
        while True:
            try:
                message = queue.popleft()  # atomic: no two connections take the same one
            except IndexError:
                return outcomes, []
            if pacer is not None:  # the provider's rate limit, shared by the group's connections
                pacer.wait()
            try:
                outcomes[message.id] = Sent(transport.send(message, now))
            except ProviderUnavailable as exc:
                outcomes[message.id] = Unavailable(exc.message)
                return outcomes, [exc.message]
            except PermanentDeliveryError as exc:
                outcomes[message.id] = Failed(exc.message, exc.bounce, exc.suppress)
            except TransientDeliveryError as exc:
                outcomes[message.id] = Retry(exc.message)
            except Exception as exc:  # a bug must not stop the worker: retried, then failed
                outcomes[message.id] = Retry(f"unexpected error: {exc!r}")
    finally:
        transport.close()
