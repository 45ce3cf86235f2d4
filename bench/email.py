"""E-mail benchmark: personalised e-mails/s through the gate and real delivery, against bare smtplib.

20,000 contacts get one marketing e-mail each: dispatch (policy gate, template
render, the queued message row) and delivery (claim, MIME with tracked links
and inlined CSS, SMTP over 4 connections from the sender processes, the sent
status), run by the worker as `jornada serve` runs it (its sender processes
started before the clock: a running server has them from its first e-mail on),
to a local aiosmtpd sink in another process. The baseline is the physical limit
of that sink: a bare smtplib loop over 4 connections sending the same messages,
already rendered. Prints both and their ratio; run with
`make bench` (or `python -P bench/email.py`).
"""

from __future__ import annotations

import os
import sys

if not sys.flags.safe_path:
    # this file's name would shadow the stdlib `email` package: run without the script's folder
    os.execv(sys.executable, [sys.executable, "-P", *sys.argv])

import argparse
import platform
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from jornada.channels.email.compose import Outbound, compose
from jornada.channels.email.processes import SmtpProcesses
from jornada.channels.models import Message
from jornada.channels.providers import Keyring, set_provider
from jornada.clock import SystemClock
from jornada.config import load_settings
from jornada.contacts import Contact
from jornada.db import Database
from jornada.ingest import accept_messages
from jornada.migrations import upgrade
from jornada.outbox import enqueue_many
from jornada.scheduler import Courier, Worker
from jornada.workspaces import WorkspaceRef, create_workspace

CONNECTIONS = 4
TEMPLATE = "hot-lead-consultivo"  # first name in subject and body, two links to the shop
FIRST_NAMES = ("Ana", "Bruno", "Carla", "Diego", "Elisa", "Fábio", "Gabi", "Hugo")


def sink(port: int) -> None:
    """An SMTP server that accepts every message and keeps nothing (runs in its own process)."""
    import uvloop
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            return "250 2.0.0 OK"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port, loop=uvloop.new_event_loop())
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sink() -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-P", __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the SMTP sink did not start")
    return process, port


def setup(
    directory: Path, contacts: int, port: int, keys: Keyring
) -> tuple[Database, WorkspaceRef]:
    """A shop with an SMTP provider, ``contacts`` opted-in contacts and one queued e-mail each."""
    url = f"sqlite:///{directory / 'email.db'}"
    upgrade(url)
    database = Database(url)
    now = datetime.now(UTC)
    with database.write() as session:
        created = create_workspace(session, "bench", now=now, url="https://loja.test")
        set_provider(
            session,
            created.id,
            "email",
            options={
                "url": f"smtp://127.0.0.1:{port}",
                "security": "none",
                "from": "Loja <loja@loja.test>",
            },
            now=now,
            keys=keys,
        )
    shop = WorkspaceRef(created.id, "bench", "America/Sao_Paulo", "BRL")
    for start in range(0, contacts, 500):
        accept_messages(
            database,
            shop,
            [
                {
                    "type": "identify",
                    "userId": f"u{n}",
                    "timestamp": (now - timedelta(days=1)).isoformat(),
                    "traits": {
                        "email": f"cliente{n}@example.com",
                        "first_name": FIRST_NAMES[n % len(FIRST_NAMES)],
                        "consent": {"email_marketing": True},
                    },
                }
                for n in range(start, min(contacts, start + 500))
            ],
            received_at=now - timedelta(days=1),
            trigger_flows=False,
        )
    with database.write() as session:
        contact_ids = list(
            session.scalars(select(Contact.id).where(Contact.workspace_id == shop.id))
        )
        enqueue_many(
            session,
            [
                {
                    "workspace_id": shop.id,
                    "contact_id": contact_id,
                    "kind": "send",
                    "channel": "email",
                    "idempotency_key": f"bench:{contact_id}",
                    "payload": {"template": TEMPLATE, "purpose": "marketing"},
                    "due_at": now,
                }
                for contact_id in contact_ids
            ],
        )
    return database, shop


def jornada(database: Database, courier: Courier, total: int) -> tuple[float, int]:
    """Seconds for the worker (scheduler + courier threads, as `serve` runs them) to send ``total``."""
    worker = Worker(database, SystemClock(), idle_seconds=0.05, courier=courier)
    started = time.perf_counter()
    worker.start()
    sent = 0
    try:
        while sent < total and time.perf_counter() - started < 600:
            time.sleep(0.1)
            with database.read() as session:
                sent = session.scalar(select(func.count()).where(Message.status == "sent")) or 0
    finally:
        elapsed = time.perf_counter() - started
        worker.stop()
    return elapsed, int(sent)


def rendered(database: Database, keys: Keyring) -> list[tuple[str, str, bytes]]:
    """(sender, recipient, bytes) of every stored message, composed as delivery composes them."""
    options = {"from": "Loja <loja@loja.test>"}
    now = datetime.now(UTC)
    out = []
    with database.read() as session:
        for m in session.scalars(select(Message).order_by(Message.id)):
            data, sender, _ = compose(
                Outbound(
                    m.id,
                    m.workspace_id,
                    m.contact_id,
                    m.channel,
                    m.purpose,
                    m.template,
                    m.to_address or "",
                    m.subject,
                    m.body,
                    m.text_body,
                    None,
                ),
                options,
                {},
                keys=keys,
                public_url="http://127.0.0.1:8000",
                now=now,
            )
            out.append((sender, m.to_address or "", data))
    return out


def baseline(port: int, messages: list[tuple[str, str, bytes]]) -> float:
    """Seconds for a bare smtplib loop to send ``messages`` over CONNECTIONS connections."""

    def one(share: list[tuple[str, str, bytes]]) -> None:
        conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
        for sender, to, data in share:
            conn.sendmail(sender, [to], data)
        conn.quit()

    shares = [messages[i::CONNECTIONS] for i in range(CONNECTIONS)]
    threads = [threading.Thread(target=one, args=(s,)) for s in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink(args.sink)
        return
    print(
        f"machine: {platform.machine()}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    directory = Path(tempfile.mkdtemp(prefix="jornada-bench-email-"))
    process, port = start_sink()
    keys = Keyring("bench-secret-key-not-for-production")
    try:
        started = time.perf_counter()
        database, _ = setup(directory, args.messages, port, keys)
        print(
            f"seeded {args.messages:,} contacts and e-mails in {time.perf_counter() - started:.1f} s"
        )
        # as `serve` sends (JORNADA_DELIVERY_PROCESSES, default on): a running server has
        # its sender processes from its first e-mail on, so they start before the clock
        senders = SmtpProcesses(CONNECTIONS) if load_settings().delivery_processes else None
        if senders is not None:
            senders.start()
        courier = Courier(
            keys=keys,
            public_url="http://127.0.0.1:8000",
            connections=CONNECTIONS,
            senders=senders,
        )
        seconds, sent = jornada(database, courier, args.messages)
        assert sent == args.messages, f"only {sent:,} of {args.messages:,} e-mails were sent"
        ours = sent / seconds
        print(
            f"jornada: gate + render + queue + deliver {sent:,} e-mails over {CONNECTIONS} "
            f"connections in {seconds:.1f} s: {ours:,.0f} messages/s   (target >= 500)"
        )
        messages = rendered(database, keys)
        bare = len(messages) / baseline(port, messages)
        print(
            f"baseline: bare smtplib, same messages pre-rendered, {CONNECTIONS} connections: {bare:,.0f} messages/s"
        )
        print(f"ratio jornada/baseline: {ours / bare:.2f}   (target >= 0.5)")
        database.dispose()
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
