"""``pulsegate demo``: migrate a fresh store, start the emulator, webhook sink, worker, traffic generator and
dashboard as child processes on loopback, drive the failure cycle, print the tour, and on Ctrl-C / SIGTERM stop
everything — traffic first (its client flushes every row while the emulator still answers), then the rest —
leaving no process behind.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

from pulsegate.jobs.cli.demo.children import Child, ChildFailed
from pulsegate.jobs.cli.demo.scenario import Phase, ScenarioCycle, ScenarioDriver, build_phases, emulator_applier
from pulsegate.jobs.cli.demo.setup import DemoPlan
from pulsegate.jobs.cli.demo.tour import dashboard_link, tour_text

log = logging.getLogger("pulsegate.demo")

READY_TIMEOUT_S = 120.0
#: Stop order: traffic first (its client flushes every row), the emulator last (calls in flight still get answers).
STOP_ORDER = ("traffic", "dashboard", "worker", "sink", "emulator")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    open_browser: bool = True
    verbose: bool = False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pulsegate.jobs.cli", *args]


def children_for(plan: DemoPlan, console: TextIO, verbose: bool = False) -> dict[str, Child]:
    env = plan.environ()
    ports = plan.ports

    def child(name: str, argv: list[str], **kwargs: object) -> Child:
        # cwd = the demo's folder: no `.env` of the user's (a real key, a Redis URL) is read by the children
        return Child(name, argv, env, plan.log_dir, console=console, cwd=plan.directory, **kwargs)  # type: ignore[arg-type]

    scenario = plan.directory / "scenario-calm.json"
    scenario.write_text("{}", encoding="utf-8")
    verbose_flag = ["-v"] if verbose else []
    traffic = ["--rate", f"{plan.rate:g}", "--stats-file", str(plan.traffic_stats_file)]
    return {
        "emulator": child("emulator", _cli("emulator", "--port", str(ports["emulator"]), "--scenario", str(scenario))),
        "sink": child("sink", [sys.executable, "-m", "pulsegate.jobs.cli.demo.sink", "--port", str(ports["sink"])]),
        "worker": child("worker", _cli(*verbose_flag, "worker", "--port", str(ports["worker"])), grace_s=20.0),
        "traffic": child("traffic", [sys.executable, "-m", "pulsegate.jobs.cli.demo.traffic", *traffic], grace_s=30.0),
        "dashboard": child("dashboard", _cli("dashboard", "--port", str(ports["dashboard"])), echo=verbose),
    }


def _ready_urls(plan: DemoPlan) -> dict[str, str]:
    return {
        "emulator": f"{plan.url('emulator')}/_emulator/health",
        "sink": f"{plan.url('sink')}/healthz",
        "worker": f"{plan.url('worker')}/healthz",
        "dashboard": f"{plan.url('dashboard')}/_stcore/health",
    }


def _write_state(plan: DemoPlan, children: dict[str, Child]) -> None:
    """``demo.json``: where everything listens (for scripts and tests); the admin token is a throwaway."""
    state = {
        "urls": {name: plan.url(name) for name in plan.ports},
        "ports": dict(plan.ports),
        "database_url": plan.database_url,
        "admin_token": plan.admin_token,
        "cycle_s": plan.cycle_s,
        "pids": {name: c.pid for name, c in children.items()},
        "traffic_stats": str(plan.traffic_stats_file),
        "alert_rules_file": str(plan.alert_rules_file),
    }
    (plan.directory / "demo.json").write_text(json.dumps(state, indent=2), encoding="utf-8")


def _can_open_browser() -> bool:
    """Only where a graphical browser exists: on a bare Linux console webbrowser would start a text browser."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def migrate(database_url: str) -> None:
    from pulsegate import migrations
    from pulsegate.core.store import check_connection, create_store_engine

    engine = create_store_engine(database_url)
    try:
        check_connection(engine)
    finally:
        engine.dispose()
    migrations.upgrade(database_url)


class Demo:
    """One run. ``run()`` returns the exit status: 0 after a clean stop by signal, 1 when a component failed."""

    def __init__(self, plan: DemoPlan, options: DemoOptions, console: TextIO | None = None) -> None:
        self.plan = plan
        self.options = options
        self.console = console or sys.stdout
        self.stop_requested = threading.Event()
        self.children: dict[str, Child] = {}
        self._signals = 0

    def say(self, text: str) -> None:
        self.console.write(text + "\n")
        self.console.flush()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:  # a second Ctrl-C: no more waiting
            for child in self.children.values():
                child.signal_group(signal.SIGKILL)
        self.stop_requested.set()

    def run(self) -> int:
        previous: dict[int, Callable[..., object] | int | None] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._on_signal)
        try:
            return self._run()
        finally:
            self.shutdown()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self) -> int:
        plan = self.plan
        self.say(f"Pulsegate demo: migrating {plan.database_url} …")
        migrate(plan.database_url)
        self.children = children_for(plan, self.console, self.options.verbose)
        for child in self.children.values():  # every fork before any thread: see pulsegate.jobs.cli.parent_death
            child.spawn()
        for child in self.children.values():
            child.copy_output()
        _write_state(plan, self.children)
        try:
            for name, url in _ready_urls(plan).items():
                self.children[name].wait_ready(url, READY_TIMEOUT_S, cancel=self.stop_requested)
        except ChildFailed as exc:
            self.say(f"pulsegate demo: {exc}")
            return 1
        if self.stop_requested.is_set():  # Ctrl-C while starting
            return 0
        push = emulator_applier(plan.url("emulator"))

        def apply(phase: Phase) -> None:
            push(phase)
            self.say(f"{'demo':<9}| {time.strftime('%H:%M:%S')} scenario → {phase.name}: {phase.description}")

        driver = ScenarioDriver(ScenarioCycle(build_phases(plan.cycle_s, plan.keys)), apply)
        self.say(tour_text(plan, driver.cycle.phases))
        if self.options.open_browser and _can_open_browser():
            webbrowser.open(dashboard_link(plan))
        return self._drive(driver)

    def _drive(self, driver: ScenarioDriver) -> int:
        while not self.stop_requested.is_set():
            try:
                wait = driver.tick()
            except OSError as exc:  # the emulator is checked just below; a slow answer is retried next tick
                log.warning("could not change the emulator's scenario: %s", exc)
                wait = 1.0
            for name, child in self.children.items():
                if not child.running():
                    self.say(f"pulsegate demo: {name} stopped unexpectedly (see {child.log_path}); stopping")
                    return 1
            self.stop_requested.wait(min(wait, 1.0))
        self.say("\nPulsegate demo: stopping (traffic first, so every call is recorded) …")
        return 0

    def shutdown(self) -> None:
        statuses = {}
        for name in STOP_ORDER:
            child = self.children.get(name)
            if child is not None:
                statuses[name] = child.stop()
        if statuses:
            shown = ", ".join(f"{name} {code}" for name, code in statuses.items())
            self.say(f"Pulsegate demo: stopped ({shown}); logs in {self.plan.log_dir}")
        stats = self.plan.traffic_stats_file
        if stats.exists():
            tally = json.loads(stats.read_text())
            self.say(
                f"traffic: {tally['calls']} calls, {tally['succeeded']} succeeded, {tally['failed']} failed, "
                f"{tally['fell_back']} fell back to OpenAI; every attempt is in {self.plan.database_url}"
            )


def run_demo(plan: DemoPlan, options: DemoOptions, console: TextIO | None = None) -> int:
    return Demo(plan, options, console).run()
