"""E-mail sent from processes of their own, so an SMTP reply never waits for the scheduler.

In one process the sending threads share the interpreter lock with the scheduler
(gate, render) and the courier (claims, records), and each SMTP reply waited its
turn for it: four connections delivered about two thirds of what they deliver
from processes of their own (``bench/email.py``). A sending thread hands its
connection's share of a batch (the provider's settings with their secrets, the
keyring, the messages) to a child over a pipe, and waits, without the lock, for
the outcomes; the child opens the connection, sends, closes and answers.

Children are plain ``python -m jornada.channels.email.processes`` processes, not
``multiprocessing`` ones, which would import the parent's main module (the whole
server) in each. A child that dies is replaced; the messages it held stay leased
(the lease rule decides whether they go again), as when a worker dies. The pipe
is private to the two processes; what crosses it never leaves the machine.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, Any

from jornada.channels.connection import Report, send_all
from jornada.channels.email.compose import Outbound
from jornada.channels.email.smtp import SmtpTransport
from jornada.channels.providers.secrets import Keyring
from jornada.errors import JornadaError

_SIZE = struct.Struct("!I")
_READY = "ready"


class SenderDied(JornadaError):
    """An e-mail sender process ended in the middle of a share (killed, out of memory)."""


class SmtpProcesses:
    """Up to ``size`` sender processes, started on first use (or by :meth:`start`)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: queue.SimpleQueue[_Child] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._children: list[_Child] = []

    def start(self) -> None:
        """Start every child now and wait until each is ready (a server does it at start-up,
        not with its first e-mail)."""
        started = [self._spawn() for _ in range(self.size - len(self._children))]
        for child in started:
            child.ready()
            self._idle.put(child)

    def run(
        self,
        options: Mapping[str, Any],
        secrets: Mapping[str, Any],
        messages: Sequence[Outbound],
        now: datetime,
        *,
        keys: Keyring,
        public_url: str,
        timeout: float,
    ) -> Report:
        """Send ``messages`` over one connection in a child; blocks until it answers."""
        child = self._take()
        job = (dict(options), dict(secrets), list(messages), now, keys, public_url, timeout)
        try:
            report = child.call(job)
        except BaseException:
            self._forget(child)
            raise
        self._idle.put(child)
        return report

    def _take(self) -> _Child:
        """An idle child, or a new one; one that ended while idle (killed) is replaced,
        as it held no message."""
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return self._spawn()
            if child.process.poll() is None:
                return child
            self._forget(child)

    def close(self) -> None:
        """Let every child finish and exit (end of input)."""
        with self._lock:
            children, self._children = self._children, []
        self._idle = queue.SimpleQueue()
        for child in children:
            child.stop()

    def _spawn(self) -> _Child:
        """A new child; :meth:`_Child.call` waits for it to be ready."""
        child = _Child()
        with self._lock:
            self._children.append(child)
        return child

    def _forget(self, child: _Child) -> None:
        with self._lock:
            if child in self._children:
                self._children.remove(child)
        child.kill()


class _Child:
    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._ready = False

    def ready(self) -> None:
        """Wait for the child's greeting: its imports are done."""
        if not self._ready:
            assert self.process.stdout is not None
            if _read(self.process.stdout) != _READY:
                raise SenderDied(f"the e-mail sender process did not start ({self.process.poll()})")
            self._ready = True

    def call(self, job: tuple[Any, ...]) -> Report:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        try:
            self.ready()
            _write(self.process.stdin, job)
            report = _read(self.process.stdout)
        except OSError as exc:
            raise SenderDied(f"the e-mail sender process stopped: {exc}") from exc
        if report is None:
            raise SenderDied(f"the e-mail sender process ended ({self.process.poll()})")
        assert isinstance(report, tuple)
        return report

    def stop(self) -> None:
        """End of input: the child finishes its loop and exits."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # it may have gone already
                self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.kill()

    def kill(self) -> None:
        """Ends the child if it still runs, and lets go of its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _write(pipe: IO[bytes], value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_SIZE.pack(len(data)) + data)
    pipe.flush()


def _read(pipe: IO[bytes]) -> object | None:
    """The next value, or None at the end of the pipe."""
    header = pipe.read(_SIZE.size)
    if len(header) < _SIZE.size:
        return None
    (size,) = _SIZE.unpack(header)
    data = pipe.read(size)
    if len(data) < size:
        return None
    value: object = pickle.loads(data)  # noqa: S301 - the other end is our own process
    return value


def _send(
    options: dict[str, Any],
    secrets: dict[str, Any],
    messages: list[Outbound],
    now: datetime,
    keys: Keyring,
    public_url: str,
    timeout: float,
) -> Report:
    """In the child: one connection sends ``messages`` (see :func:`send_all`)."""
    transport = SmtpTransport(options, secrets, keys=keys, public_url=public_url, timeout=timeout)
    return send_all(transport, deque(messages), now)


def main() -> None:
    """The child: a share in, its report out, until the parent closes the pipe."""
    source, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not break the protocol
    _write(answers, _READY)
    while (job := _read(source)) is not None:
        assert isinstance(job, tuple)
        _write(answers, _send(*job))


if __name__ == "__main__":
    main()
