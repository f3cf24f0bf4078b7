"""Running ``pulsegate demo`` as a user does (a real process, shortened cycle, free ports) and looking at it from
outside: its state file, the store, the worker's API, the sink's JSON and a headless Chromium."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from pulsegate.core.store import create_store_engine
from tests.support.browser import require_chromium
from tests.support.processes import BackgroundProcess

READY_LINE = "Press Ctrl-C to stop everything."
T = TypeVar("T")


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@contextmanager
def running_demo(tmp_path: Path, *extra: str, cycle_s: int = 40) -> Iterator[tuple[BackgroundProcess, dict[str, Any]]]:
    """``pulsegate demo`` on free ports until it printed its tour; yields the process and its demo.json."""
    directory = tmp_path / "demo"
    args = ["demo", "--cycle-s", str(cycle_s), "--no-browser", "--dir", str(directory), *extra]
    for flag in ("--port", "--worker-port", "--emulator-port", "--sink-port"):
        args += [flag, "0"]
    with BackgroundProcess(args, cwd=tmp_path) as demo:
        demo.wait_for_output(READY_LINE, timeout=120)
        yield demo, json.loads((directory / "demo.json").read_text())


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:g} s")
        time.sleep(every)


def get_json(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:  # 503 carries the same JSON when the status is "down"
        return exc.code, json.load(exc)


def scalar(engine: sa.Engine, sql: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.text(sql)).scalar()


def store(state: dict[str, Any]) -> sa.Engine:
    return create_store_engine(state["database_url"])


def process_groups_left(state: dict[str, Any]) -> list[str]:
    """Children (each led its own process group) of which any process is still alive — running, not a zombie
    waiting to be reaped — as ``name: pid state command`` for the failure message."""
    groups = {pid: name for name, pid in state["pids"].items()}
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name: state, ppid, pgrp, ...
        process_state, pgrp = fields[0], int(fields[2])
        if pgrp in groups and process_state != "Z":
            left.append(f"{groups[pgrp]}: {entry.name} {process_state} {command}")
    return sorted(left)


def check_overview(page: Any, dashboard_url: str) -> int:
    """The Overview draws its charts with data; returns the Requests tile's value."""
    import re

    from playwright.sync_api import expect

    page.goto(f"{dashboard_url}/?range=15m&refresh=paused", wait_until="domcontentloaded")
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    metric = page.locator('[data-testid="stMetricValue"]').first
    expect(metric).to_have_text(re.compile(r"^[\d,.]+( k)?$"), timeout=30_000)
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    text = metric.inner_text().replace(",", "")
    return int(float(text.split()[0]) * (1000 if text.endswith("k") else 1))
