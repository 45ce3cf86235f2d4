"""Ingestion benchmark: events/s in process, over HTTP, against a raw-SQLite baseline; Olist imports.

Prints figures from one run on this machine; the ratio to the baseline measured
in the same run is what counts on a noisy machine. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from jornada.db import Database
from jornada.ingest import accept_batch_body
from jornada.migrations import upgrade
from jornada.workspaces import WorkspaceRef, create_workspace

ROOT = Path(__file__).resolve().parents[1]
OLIST_SAMPLE = ROOT.parent / "shared" / "data" / "olist" / "consistent_sample"
BATCH = 100  # what segment-analytics-python sends per request by default (flush_at)


def make_batches(events: int, contacts: int, seed: int = 1) -> list[dict[str, Any]]:
    """Storefront-like traffic: views, pages, carts, identifies and orders over `contacts` people.

    Visitors come in sessions of 3-15 events, 50 sessions interleaved at any
    moment, as a shop's traffic does; which visitor starts a session is random.
    """
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    batches, batch = [], []
    sessions = [[rng.randrange(contacts), rng.randint(3, 15)] for _ in range(50)]
    for n in range(events):
        slot = sessions[rng.randrange(len(sessions))]
        who = slot[0]
        slot[1] -= 1
        if slot[1] == 0:
            slot[0], slot[1] = rng.randrange(contacts), rng.randint(3, 15)
        ts = (start + timedelta(seconds=n)).isoformat()
        roll = rng.random()
        base: dict[str, Any] = {
            "messageId": f"b-{seed}-{n}",
            "timestamp": ts,
            "userId": f"user-{who}",
        }
        if roll < 0.55:
            msg = {
                **base,
                "type": "track",
                "event": "Product Viewed",
                "properties": {
                    "product_id": f"p{rng.randrange(500)}",
                    "name": "Produto",
                    "price": "99.90",
                    "category": "casa",
                    "url": "https://loja.test/p",
                },
            }
        elif roll < 0.75:
            msg = {
                **base,
                "type": "page",
                "name": "Categoria",
                "properties": {"url": "https://loja.test/c", "path": "/c"},
            }
        elif roll < 0.87:
            msg = {
                **base,
                "type": "track",
                "event": "Product Added",
                "properties": {
                    "product_id": f"p{rng.randrange(500)}",
                    "price": "49.90",
                    "quantity": 1,
                },
            }
        elif roll < 0.95:
            msg = {
                **base,
                "type": "identify",
                "traits": {
                    "email": f"pessoa{who}@example.com.br",
                    "first_name": "Pessoa",
                    "consent": {"email_marketing": True},
                },
            }
        else:
            msg = {
                **base,
                "type": "track",
                "event": "Order Completed",
                "properties": {"order_id": f"o{n}", "total": "149.70", "currency": "BRL"},
            }
        batch.append(msg)
        if len(batch) == BATCH:
            batches.append({"batch": batch, "sentAt": ts})
            batch = []
    if batch:
        batches.append({"batch": batch})
    return batches


def new_database(directory: Path, name: str) -> tuple[Database, WorkspaceRef, dict[str, str]]:
    url = f"sqlite:///{directory / name}"
    upgrade(url)
    database = Database(url)
    with database.write() as session:
        created = create_workspace(session, "bench", now=datetime.now(UTC))
    keys = {"write_key": created.write_key, "secret_key": created.secret_key}
    return database, WorkspaceRef(created.id, "bench", "America/Sao_Paulo", "BRL"), keys


def bench_in_process(directory: Path, batches: list[dict[str, Any]]) -> float:
    database, ref, _ = new_database(directory, "inproc.db")
    bodies = [orjson.dumps(b) for b in batches]
    total = sum(len(b["batch"]) for b in batches)
    started = time.perf_counter()
    for body in bodies:  # the same steps as POST /v1/batch: parse, validate, store
        result = accept_batch_body(database, ref, orjson.loads(body), received_at=datetime.now(UTC))
        assert not result.rejected
    elapsed = time.perf_counter() - started
    database.dispose()
    return total / elapsed


_COLUMNS = (
    "workspace_id, message_id, contact_id, type, event, user_id, anonymous_id, "
    "timestamp, received_at, properties, context"
)


def stored_rows(directory: Path) -> dict[str, tuple[Any, ...]]:
    """message_id -> the events row exactly as the in-process run stored it."""
    conn = sqlite3.connect(str(directory / "inproc.db"))
    try:
        return {row[1]: row for row in conn.execute(f"SELECT {_COLUMNS} FROM events")}
    finally:
        conn.close()


def bench_raw_sqlite(
    directory: Path, batches: list[dict[str, Any]], stored: dict[str, tuple[Any, ...]]
) -> float:
    """Physical limit: the same event rows, executemany'd into the same table, same batches and pragmas.

    "The same rows" means the rows the in-process run stored, byte for byte:
    its contact ids (a constant id would make the contact index's writes
    sequential) and its clock-corrected timestamps (the client's raw ones
    arrive in order, a cheaper job for the time indexes than the real one).
    """
    database, ref, _ = new_database(directory, "raw.db")
    path = database.engine.url.database
    database.dispose()
    prepared = [[(ref.id, *stored[m["messageId"]][1:]) for m in body["batch"]] for body in batches]
    total = sum(len(r) for r in prepared)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    sql = f"INSERT INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    started = time.perf_counter()
    for rows in prepared:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


def bench_http(
    directory: Path, batches: list[dict[str, Any]], clients: int = 4, processes: int = 1
) -> float:
    name = f"http-{processes}.db"
    url = f"sqlite:///{directory / name}"
    database, _ref, keys = new_database(directory, name)
    database.dispose()
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jornada",
            "serve",
            "--port",
            str(port),
            "--processes",
            str(processes),
        ],
        env={**os.environ, "JORNADA_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        bodies = [orjson.dumps(b) for b in batches]
        total = sum(len(b["batch"]) for b in batches)
        errors: list[str] = []

        def worker(share: list[bytes]) -> None:
            with httpx.Client(base_url=base, auth=(keys["write_key"], ""), timeout=60) as client:
                for body in share:
                    response = client.post(
                        "/v1/batch", content=body, headers={"Content-Type": "application/json"}
                    )
                    if response.status_code != 200:
                        errors.append(response.text)

        threads = [
            threading.Thread(target=worker, args=(bodies[i::clients],)) for i in range(clients)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
        return total / elapsed
    finally:
        server.terminate()
        server.wait(timeout=10)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_olist_import(directory: Path, source: Path, name: str) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `jornada import olist` in a child process."""
    url = f"sqlite:///{directory / (name + '.db')}"
    env = {**os.environ, "JORNADA_DATABASE_URL": url}
    _run([sys.executable, "-m", "jornada", "workspace", "create", "olist"], env)
    code = (
        "import resource, subprocess, sys, time;"
        "t = time.perf_counter();"
        f"subprocess.run([sys.executable, '-m', 'jornada', 'import', 'olist', {str(source)!r}, "
        "'--workspace', 'olist'], check=True, stdout=subprocess.DEVNULL);"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = _run([sys.executable, "-c", code], env).split()
    return float(out[0]), int(out[1]) / 1024


def _run(command: list[str], env: dict[str, str]) -> str:
    """Run a child process; on failure show what it printed, not just its exit code."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("olist_gen", ROOT / "bench" / "olist_gen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    global BATCH  # make_batches reads it; the in-process figures are measured at two sizes
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--olist-orders", type=int, default=100_000)
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON line too"
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}",
    }
    print(f"machine: {figures['machine']}")
    directory = Path(tempfile.mkdtemp(prefix="jornada-bench-"))
    try:
        for size in (100, 500):
            BATCH = size
            batches = make_batches(args.events, args.contacts)
            print(
                f"workload: {args.events:,} events, {args.contacts:,} contacts, batches of {size}"
            )
            a = bench_in_process(directory, batches)
            c = bench_raw_sqlite(directory, batches, stored_rows(directory))
            print(f"(c) baseline raw executemany into events:  {c:>10,.0f} events/s")
            print(
                f"(a) in-process /v1/batch path + profiles:   {a:>10,.0f} events/s   (target >= 20,000)"
            )
            print(f"    ratio a/c:                               {a / c:>10.2f}   (target >= 0.3)")
            figures[f"a_in_process_{size}"], figures[f"c_raw_{size}"] = a, c
            for name in ("inproc.db", "raw.db"):
                for suffix in ("", "-wal", "-shm"):
                    (directory / f"{name}{suffix}").unlink(missing_ok=True)
        BATCH = 100
        for processes in (1, 2):
            figure = bench_http(
                directory,
                make_batches(args.events // 2, args.contacts, seed=2),
                processes=processes,
            )
            figures[f"b_http_4_clients_{processes}_processes"] = figure
            print(
                f"(b) HTTP /v1/batch, 4 clients, serve --processes {processes}: "
                f"{figure:>9,.0f} events/s   (target >= 5,000)"
            )
        if OLIST_SAMPLE.exists():
            seconds, rss = time_olist_import(directory, OLIST_SAMPLE, "olist-sample")
            figures["olist_sample_s"], figures["olist_sample_rss_mb"] = seconds, rss
            print(
                f"Olist sample (8,135 orders) import:         {seconds:>10.1f} s, peak {rss:,.0f} MB"
                "   (target < 10 s)"
            )
        else:
            print(f"Olist sample not found at {OLIST_SAMPLE}: skipped")
        generated = directory / "olist-generated"
        started = time.perf_counter()
        load_generator().generate(generated, args.olist_orders, seed=7)
        print(
            f"generated {args.olist_orders:,} Olist-layout orders in {time.perf_counter() - started:.1f} s"
        )
        seconds, rss = time_olist_import(directory, generated, "olist-generated")
        figures["olist_generated_s"], figures["olist_generated_rss_mb"] = seconds, rss
        print(
            f"Olist-layout {args.olist_orders:,} orders import:      {seconds:>10.1f} s, peak {rss:,.0f} MB"
            "   (target < 120 s, < 500 MB)"
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    main()
