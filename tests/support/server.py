"""A live `jornada serve` in a subprocess, on a random loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.postgres import free_port


@dataclass
class LiveServer:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(
    database_url: str, log: Path, *, worker: bool = False, processes: int = 1
) -> LiveServer:
    """Serve on a free port; without ``worker`` the tests drive the scheduler on their own clock."""
    port = free_port()
    env = {**os.environ, "JORNADA_DATABASE_URL": database_url}
    with log.open("wb") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jornada",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--worker" if worker else "--no-worker",
                "--processes",
                str(processes),
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jornada serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, database_url, process, log)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"jornada serve did not answer in 60 s: {log.read_text()}")
