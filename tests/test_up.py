"""``pulsegate up`` as a host runs it: the refusals, and a real run (migrate + worker + dashboard) on a SQLite store
with the emulator as the provider — SIGTERM stops everything with exit 0, a child's crash stops the other."""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulsegate.emulator import EmulatorServer
from pulsegate.jobs.cli.up import NO_KEY_MESSAGE, exit_status
from tests.client.conftest import ANTHROPIC_KEYS, emu, emulator_server
from tests.support.processes import BackgroundProcess, free_port, run_cli, wait_http

__all__ = ["emu", "emulator_server"]

START_S = 90.0  # both children import the SDKs and Streamlit; a loaded 2-CPU machine needs a while


def test_up_refuses_to_start_without_a_provider_key(tmp_path: Path) -> None:
    result = run_cli(["up"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"pulsegate up: {NO_KEY_MESSAGE}\n"
    assert "ANTHROPIC_API_KEY" in NO_KEY_MESSAGE and "OPENAI_API_KEY" in NO_KEY_MESSAGE
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing ran: not even the migration


def test_up_refuses_a_public_dashboard_without_a_password_before_starting_anything(tmp_path: Path) -> None:
    result = run_cli(["up", "--host", "0.0.0.0"], cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test-" + "y" * 32})
    assert result.returncode == 2
    assert result.stderr == (
        "pulsegate up: refusing to serve the dashboard on 0.0.0.0 without a password: set DASHBOARD_PASSWORD "
        "(8+ characters), or bind to 127.0.0.1\n"
    )
    assert not (tmp_path / "data").exists()


def test_exit_status_is_never_zero_for_a_child_that_stopped_on_its_own() -> None:
    assert exit_status(3) == 3
    assert exit_status(-signal.SIGKILL) == 137
    assert exit_status(0) == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead but not yet reaped by its parent (or by init after `up` exited)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(_alive(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit() and _in_group(p, pgid))


def _in_group(proc: Path, pgid: int) -> bool:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid
    except (OSError, ValueError, IndexError):
        return False


class Up:
    def __init__(self, process: BackgroundProcess, dashboard_port: int, worker_port: int) -> None:
        self.process = process
        self.dashboard_port = dashboard_port
        self.worker_port = worker_port
        self.pids: dict[str, int] = {}

    def wait_ready(self) -> None:
        self.process.wait_for_output("Ctrl-C or SIGTERM stops", timeout=START_S)
        for name in ("dashboard", "worker", "gateway"):
            if name == "gateway" and "  gateway " not in self.process.output:
                continue
            found = re.search(rf"{name}\s.*\(pid (\d+)", self.process.output)
            assert found, self.process.output
            self.pids[name] = int(found.group(1))
        assert self.process.process is not None
        wait_http(f"http://127.0.0.1:{self.worker_port}/healthz", timeout=START_S, process=self.process.process)
        wait_http(f"http://127.0.0.1:{self.dashboard_port}/_stcore/health", timeout=START_S)

    def wait_gone(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while any(_alive(pid) or _group_alive(pid) for pid in self.pids.values()):
            assert time.monotonic() < deadline, f"children left behind: {self.pids}\n{self.process.output}"
            time.sleep(0.1)


@pytest.fixture
def up(emu: EmulatorServer, tmp_path: Path) -> Iterator[Up]:
    dashboard_port, worker_port = free_port(), free_port()
    env = {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEYS[0],
        "ANTHROPIC_BASE_URL": emu.url,
        "OPENAI_BASE_URL": emu.openai_base_url,
        "WORKER_PORT": str(worker_port),
        "PROBE_INTERVAL_S": "5",
        "SPOOL_DIR": str(tmp_path / "spool"),
    }
    process = BackgroundProcess(["up", "--port", str(dashboard_port)], cwd=tmp_path, env=env)
    with process:
        yield Up(process, dashboard_port, worker_port)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_up_runs_worker_and_dashboard_and_a_signal_stops_both_with_exit_0(
    up: Up, tmp_path: Path, stop: signal.Signals
) -> None:
    up.wait_ready()
    with urllib.request.urlopen(f"http://127.0.0.1:{up.worker_port}/healthz", timeout=5) as response:
        health = json.loads(response.read())
    assert health["status"] == "ok"
    assert "store ready: SQLite file ./data/pulsegate.db" in up.process.output  # the migration ran first
    assert (tmp_path / "data" / "pulsegate.db").exists()
    for pid in up.pids.values():
        assert os.getpgid(pid) == pid  # each child leads its own process group

    assert up.process.stop(stop, timeout=60) == 0, up.process.output
    assert f"pulsegate up: {stop.name} received: stopping worker, dashboard" in up.process.output
    assert "worker stopped: recorder wrote" in up.process.output  # the worker shut down cleanly, rows flushed
    up.wait_gone()


@pytest.mark.slow
def test_a_crashed_child_stops_the_other_and_up_exits_non_zero(up: Up) -> None:
    up.wait_ready()
    os.kill(up.pids["worker"], signal.SIGKILL)
    assert up.process.process is not None
    code = up.process.process.wait(timeout=60)
    assert code == 128 + signal.SIGKILL, up.process.output
    assert "pulsegate up: the worker was killed by SIGKILL; stopping dashboard" in up.process.output
    up.wait_gone()


def test_up_runs_the_procfiles_commands() -> None:
    from pulsegate.jobs.cli.up import PROCFILE_STEPS

    procfile = (Path(__file__).resolve().parents[1] / "Procfile").read_text()
    lines = dict(line.split(": ", 1) for line in procfile.splitlines() if line.strip())
    assert set(lines) == set(PROCFILE_STEPS)
    for process_type, subcommand in PROCFILE_STEPS.items():
        assert lines[process_type].split()[:2] == ["pulsegate", subcommand]


def test_a_failed_migration_starts_nothing_and_up_exits_with_its_status(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": "sk-test-" + "y" * 32,
        "DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x",
    }
    result = run_cli(["up"], cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("pulsegate migrate: ")
    assert result.stderr.endswith(
        "pulsegate up: migrate failed (status 2): the worker and the dashboard were not started\n"
    )
    assert "Pulsegate up —" not in result.stdout


@pytest.mark.slow
def test_up_with_the_gateway_runs_all_three_and_a_signal_stops_them_all(emu: EmulatorServer, tmp_path: Path) -> None:
    dashboard_port, worker_port, gateway_port = free_port(), free_port(), free_port()
    env = {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEYS[0],
        "ANTHROPIC_BASE_URL": emu.url,
        "WORKER_PORT": str(worker_port),
        "GATEWAY_PORT": str(gateway_port),  # set: up starts the gateway without --gateway
        "SPOOL_DIR": str(tmp_path / "spool"),
    }
    with BackgroundProcess(["up", "--port", str(dashboard_port)], cwd=tmp_path, env=env) as process:
        up = Up(process, dashboard_port, worker_port)
        up.wait_ready()
        assert "Ctrl-C or SIGTERM stops all three." in process.output
        assert set(up.pids) == {"dashboard", "worker", "gateway"}
        assert wait_http(f"http://127.0.0.1:{gateway_port}/healthz", timeout=START_S) == 200
        assert process.stop(signal.SIGTERM, timeout=60) == 0, process.output
        assert "pulsegate up: SIGTERM received: stopping worker, dashboard, gateway" in process.output
        up.wait_gone()
