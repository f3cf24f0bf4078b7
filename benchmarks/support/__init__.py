"""What several benchmarks share: free loopback ports, CPU pinning, the emulator in its own process, and throwaway
PostgreSQL databases (made and dropped the way tests/conftest.py makes them).

Its modules hold what the benchmarks share with the tests (which import them as ``benchmarks.support.…``; the
benchmarks import nothing from tests/): the browser's path and flags, a loopback TCP proxy, synthetic store rows and
the Overview's seeded store."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
CLIENT_CPU = 0
EMULATOR_CPU = 1
PG_SERVER = os.environ.get("PULSEGATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def can_pin() -> bool:
    return hasattr(os, "sched_setaffinity") and {CLIENT_CPU, EMULATOR_CPU} <= os.sched_getaffinity(0)


def wait_for_port(process: subprocess.Popen[Any], port: int, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the {name} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the {name} did not start within 20 s")


def stop(process: subprocess.Popen[Any], timeout_s: float = 20.0) -> None:
    """Ask a child to end (SIGTERM), give it ``timeout_s``, then kill it; always reaped."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_emulator(
    port: int, *, pin: bool, scenario: Mapping[str, Any] | None = None, scenario_file: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m pulsegate.emulator`` on ``port`` (pinned to EMULATOR_CPU when ``pin``), with a scenario file and/or a
    scenario PUT through the admin API once it answers."""

    def pin_child() -> None:
        os.sched_setaffinity(0, {EMULATOR_CPU})

    env = dict(os.environ)
    command = [sys.executable, "-m", "pulsegate.emulator", "--host", "127.0.0.1", "--port", str(port)]
    if scenario_file is not None:
        command += ["--scenario", str(scenario_file)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, preexec_fn=pin_child if pin else None
    )
    wait_for_port(process, port, "emulator")
    if scenario is not None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/_emulator/scenario",
            data=json.dumps(scenario).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status >= 300:
                raise SystemExit(f"PUT /_emulator/scenario answered {response.status}")
    return process


class ScratchPostgres:
    """A throwaway database on the benchmark server, dropped afterwards."""

    def __init__(self, server_url: str = PG_SERVER, prefix: str = "pulsegate_bench") -> None:
        self.server_url = sa.make_url(server_url)
        self._admin = sa.create_engine(self.server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    def create(self) -> sa.URL:
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        return self.server_url.set(database=self.name)

    def server_version(self) -> str:
        with self._admin.connect() as connection:
            return str(connection.execute(sa.text("SHOW server_version")).scalar_one()).split()[0]

    def drop_only(self) -> None:
        """Drop the database if it exists, keeping the admin connection (to create it again)."""
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def drop(self) -> None:
        self.drop_only()
        self._admin.dispose()
