"""Fixtures for the gateway: the real emulator, a migrated SQLite store, tokens made by the CLI, and a gateway
process (``pulsegate gateway``) in front of them — driven by the official Python SDKs over HTTP."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulsegate.emulator import EmulatorServer
from tests.client.conftest import emu, emulator_server
from tests.support.processes import BackgroundProcess, free_port, run_cli, wait_http

__all__ = ["emu", "emulator_server"]  # the emulator fixtures of the call wrapper's tests, shared

ANTHROPIC_KEYS = [f"sk-ant-gw-{name}-{'x' * 24}" for name in ("one", "two")]
OPENAI_KEYS = [f"sk-gw-openai-{name}-{'y' * 24}" for name in ("one", "two")]


@dataclass
class Gateway:
    url: str
    env: dict[str, str]
    cwd: Path
    process: BackgroundProcess

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def token(self, name: str, *flags: str) -> str:
        """A new token for app ``name`` (created with ``flags`` if new), as the CLI prints it: alone, last."""
        result = run_cli(["gateway-token", "create", "--name", name, *flags], cwd=self.cwd, env=self.env)
        assert result.returncode == 0, result.stderr
        token = result.stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 1.5  # every gateway re-reads the tokens each second
        while self._status(token) == 401:
            assert time.monotonic() < deadline, "a new token was not accepted within 1.5 s"
            time.sleep(0.05)
        return token

    def _status(self, token: str) -> int:
        request = urllib.request.Request(f"{self.url}/v1/no-such-path", headers={"x-api-key": token})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = run_cli(list(args), cwd=self.cwd, env=self.env)
        return result.returncode, result.stdout, result.stderr

    def rows(self, wait_for: int = 0, timeout: float = 10.0) -> list[dict[str, object]]:
        """The attempt rows (oldest first), waiting until at least ``wait_for`` are written (the recorder flushes
        every second)."""
        engine = sa.create_engine(self.database_url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                with engine.connect() as connection:
                    rows = [
                        dict(row._mapping)
                        for row in connection.execute(sa.text("SELECT * FROM api_usage_metrics ORDER BY ts, attempt"))
                    ]
                if len(rows) >= wait_for or time.monotonic() > deadline:
                    return rows
                time.sleep(0.1)
        finally:
            engine.dispose()


def gateway_env(emu: EmulatorServer, directory: Path, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": f"sqlite:///{directory}/gateway.db",
        "SPOOL_DIR": str(directory / "spool"),
        "ANTHROPIC_BASE_URL": emu.url,
        "OPENAI_BASE_URL": emu.openai_base_url,
        "ANTHROPIC_RPM": "100000",
        "OPENAI_RPM": "100000",
    }
    for index, key in enumerate(ANTHROPIC_KEYS):
        env["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    for index, key in enumerate(OPENAI_KEYS):
        env["OPENAI_API_KEY" if index == 0 else f"OPENAI_API_KEY_{index + 1}"] = key
    env.update(extra)
    return env


@pytest.fixture
def start_gateway(emu: EmulatorServer, tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    """Start a gateway process on a fresh store (``env`` overrides the settings); stopped after the test."""
    started: list[BackgroundProcess] = []

    def start(share: Gateway | None = None, **env: str) -> Gateway:
        """``share``: a running gateway whose store this one uses too (a second process of one deployment)."""
        directory = tmp_path / f"gateway{len(started)}"
        directory.mkdir()
        values = gateway_env(emu, directory, **env)
        if share is not None:
            values["DATABASE_URL"] = share.database_url
        else:
            migrated = run_cli(["migrate"], cwd=directory, env=values)
            assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        process = BackgroundProcess(["gateway", "--port", str(port)], cwd=directory, env=values)
        process.__enter__()
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", process=process.process)
        return Gateway(url, values, directory, process)

    yield start
    for process in started:
        process.stop()
