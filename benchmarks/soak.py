"""Soak run of the whole product: ``pulsegate demo`` (emulator driven through the failure cycle, worker, traffic
generator, webhook sink, dashboard) with the Overview open in headless Chromium, for whole cycles, measured every
minute and judged at the end.

It runs the demo's own orchestration (:class:`pulsegate.jobs.cli.demo.orchestrator.Demo`: the same children,
environment, alert rules and scenario driver as ``make demo``), in a private folder on free ports, and measures from
outside:

- every minute: the Overview's draw time (the timing tab navigates to ``?range=15m`` and waits for its Plotly
  figure) beside the toy Streamlit page of ``benchmarks/dashboard_load.py`` measured the same way; RSS and CPU of
  each component (its whole process group, from ``/proc``); Chromium's memory (PSS of its processes) and the
  watcher tab's JS heap; the alert episodes the Overview's range holds;
- at the end, from the store: calls started and answered (final attempt succeeded) per minute and per phase; and
  the alert notifications the sink received, with their outbox JSON, per rule and channel.

Assertions (exit status 1 when one fails):

1. every Overview draw within 3 × the toy page's median draw time of the same run;
2. no component's RSS more than 20 MiB above its value at the end of warm-up (the first cycle), at the end of the
   run (the peak is printed beside it); Chromium is reported separately: the watcher tab's JS heap at most
   +50 MiB over the same span;
3. every calm and recovery phase answers ≥ 99 % of the calls started in it;
4. alerts (see ``benchmarks/soak_judge.py``): per incident (a fault phase of one cycle, until the cycle's end)
   each alert listed in ``pulsegate.jobs.cli.demo.scenario.EXPECTED_ALERTS`` sends exactly one firing and one resolved
   message per channel, no other alert sends anything, nothing is sent in a calm phase, no text contradicts its numbers,
   and every message the worker delivered reached the sink;
5. no request from Chromium to a host other than loopback.

    .venv/bin/python benchmarks/soak.py                            # 30 min: 10 cycles of 180 s (the demo's default)
    .venv/bin/python benchmarks/soak.py --minutes 5 --cycle-s 150  # what `make soak-test` runs in CI
    .venv/bin/python benchmarks/soak.py --write-results --screenshots /tmp/shots
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from results import write_section
from support import free_port, stop

ROOT = Path(__file__).resolve().parents[1]

from dashboard_load import SERVE, STREAMLIT_FLAGS, TOY, start  # noqa: E402
from soak_browser import SoakBrowser  # noqa: E402
from soak_judge import PhaseSpan, Timeline  # noqa: E402
from soak_procs import Usage, chromium_usage, group_usage  # noqa: E402
from soak_report import render  # noqa: E402
from soak_store import SinkPoller, episodes_in_range  # noqa: E402
from soak_verdicts import COMPONENTS, Minute, SoakResult, judge  # noqa: E402

from pulsegate.core.store import create_store_engine  # noqa: E402
from pulsegate.jobs.cli.demo.orchestrator import Demo, DemoOptions  # noqa: E402
from pulsegate.jobs.cli.demo.scenario import PHASE_PLAN, DemoKeys, ScenarioDriver  # noqa: E402
from pulsegate.jobs.cli.demo.setup import DemoPlan, make_plan  # noqa: E402
from pulsegate.jobs.cli.demo.tour import dashboard_link  # noqa: E402

#: After the last cycle's recovery the scenario goes on for this share of the next calm phase (judged as calm), so
#: the last resolved messages are delivered and anything sent late is seen; then it stops, the emulator calm.
TAIL_CALM_SHARE = 0.75
#: A minute's browser measurements are skipped when an earlier one overran so far that they would start this late.
LATE_S = 20.0
SAMPLE_EVERY_S = 60.0
RUN_FILE = "soak-run.json"
RUN_ARGS = ("minutes", "cycle_s", "rate", "cycles", "draw_timeout_s")


@dataclass
class Recorder:
    """What the measuring loop collects while the demo runs."""

    minutes: list[Minute] = field(default_factory=list)
    sink_messages: list[dict] = field(default_factory=list)
    phase_starts: list[tuple[datetime, int, str]] = field(default_factory=list)
    scenario_started: datetime | None = None
    warm_draws: dict[str, float | None] = field(default_factory=dict)
    foreign_requests: dict[str, str] = field(default_factory=dict)
    requests_seen: int = 0
    stopped_early: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in vars(self).items() if k not in ("minutes", "phase_starts", "scenario_started")},
            "minutes": [asdict(m) for m in self.minutes],
            "phase_starts": [(at.isoformat(), cycle, name) for at, cycle, name in self.phase_starts],
            "scenario_started": self.scenario_started.isoformat() if self.scenario_started else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recorder:
        started = data.pop("scenario_started")
        return cls(
            **{k: v for k, v in data.items() if k not in ("minutes", "phase_starts")},
            minutes=[Minute(**m) for m in data["minutes"]],
            phase_starts=[(datetime.fromisoformat(at), c, n) for at, c, n in data["phase_starts"]],
            scenario_started=datetime.fromisoformat(started) if started else None,
        )


class SoakDemo(Demo):
    """The demo, with its scenario loop in a thread and the soak's measurements in the main thread."""

    def __init__(self, plan: DemoPlan, args: argparse.Namespace, console: TextIO) -> None:
        super().__init__(plan, DemoOptions(open_browser=False), console)
        self.args = args
        self.record = Recorder()
        self.poller: SinkPoller | None = None

    def _drive(self, driver: ScenarioDriver) -> int:
        status: list[int] = []
        loop = threading.Thread(
            target=lambda: status.append(Demo._drive(self, driver)), name="soak-scenario", daemon=True
        )
        wall0 = datetime.now(UTC)
        try:
            with Instruments(self) as instruments:
                # the cycle starts now that the browser is warm: its first tick applies the first phase
                driver.started = time.monotonic()
                wall0 = self.record.scenario_started = datetime.now(UTC)
                loop.start()
                measure(self, driver, loop, instruments)
        finally:
            self.stop_requested.set()
            loop.join(timeout=60)
            self.record.phase_starts = [(wall0 + timedelta(seconds=e), c, n) for e, c, n in driver.history]
        return status[0] if status else 1

    def shutdown(self) -> None:
        """Stop traffic, dashboard and worker, read the sink one last time, then stop the rest."""
        for name in ("traffic", "dashboard", "worker"):
            child = self.children.get(name)
            if child is not None:
                child.stop()
        if self.poller is not None:
            self.record.sink_messages = self.poller.stop()
        super().shutdown()


def _wait_until(demo: SoakDemo, loop: threading.Thread, moment: float) -> bool:
    """Sleep until monotonic ``moment``; False when the run is over (stop requested, or a component died)."""
    while (left := moment - time.monotonic()) > 0:
        if demo.stop_requested.wait(min(left, 1.0)):
            return False
        if not loop.is_alive():
            return False
    return not demo.stop_requested.is_set() and loop.is_alive()


class Instruments:
    """The toy page's server, Chromium (warmed up: one load of each page, then the watcher tab opened) and the sink
    poller; started before the scenario's first phase, closed after the last."""

    def __init__(self, demo: SoakDemo) -> None:
        self.demo = demo
        self.scratch = Path(tempfile.mkdtemp(prefix="pulsegate-soak-toy-"))
        self.toy: subprocess.Popen[bytes] | None = None
        self.browser: SoakBrowser | None = None

    def __enter__(self) -> Instruments:
        try:
            return self._start()
        except BaseException:
            self.__exit__()
            raise

    def _start(self) -> Instruments:
        demo, record = self.demo, self.demo.record
        toy_port = free_port()
        (self.scratch / "toy.py").write_text(TOY)
        command = [sys.executable, "-m", "streamlit", "run", str(self.scratch / "toy.py"), *SERVE, str(toy_port)]
        self.toy = start([*command, *STREAMLIT_FLAGS], dict(os.environ), toy_port)
        self.overview_url, self.toy_url = dashboard_link(demo.plan), f"http://127.0.0.1:{toy_port}/"
        self.browser = SoakBrowser(self.overview_url, self.toy_url, demo.args.draw_timeout_s)
        record.warm_draws = {"toy": self.browser.draw_s(self.toy_url)}
        record.warm_draws["overview"] = self.browser.draw_s(self.overview_url)
        record.warm_draws["watcher"] = self.browser.open_watcher()
        demo.poller = SinkPoller(demo.plan.url("sink"))
        return self

    def __exit__(self, *exc: object) -> None:
        record = self.demo.record
        if self.browser is not None:
            record.foreign_requests = dict(self.browser.network.foreign)
            record.requests_seen = self.browser.network.seen
            self.browser.close()
        if self.toy is not None:
            stop(self.toy)
        shutil.rmtree(self.scratch, ignore_errors=True)


def measure(demo: SoakDemo, driver: ScenarioDriver, loop: threading.Thread, instruments: Instruments) -> None:
    """A sample at each whole minute of the cycles, printed as it is taken: the processes first, on time; then the
    browser's measurements, unless an earlier draw overran so far that they would start over ``LATE_S`` late. At the
    end of the last cycle the scenario stops after a tail (the emulator stays calm), then the last draws are taken."""
    args, record = demo.args, demo.record
    total_s = args.cycles * demo.plan.cycle_s
    tail_s = TAIL_CALM_SHARE * PHASE_PLAN[0][1] * demo.plan.cycle_s
    engine = create_store_engine(demo.plan.database_url)
    sampler = ProcessSampler(demo)
    try:
        marks = [float(s) for s in range(0, int(total_s) + 1, int(SAMPLE_EVERY_S))]
        if marks[-1] < total_s:
            marks.append(total_s)
        for index, mark in enumerate(marks):
            if not _wait_until(demo, loop, driver.started + mark):
                record.stopped_early = "stopped early: a component exited or the run was interrupted"
                return
            minute = sampler.sample(index, time.monotonic() - driver.started)
            minute.episodes = episodes_in_range(engine, datetime.now(UTC))
            last = index == len(marks) - 1
            if last:  # the tail, then the scenario stops where it is: the next cycle's calm
                _wait_until(demo, loop, driver.started + total_s + tail_s)
                demo.stop_requested.set()
                loop.join(timeout=30)
            if last or time.monotonic() - (driver.started + mark) <= LATE_S:
                browser_sample(instruments, minute, index in args.screenshot_minutes, args.screenshots)
            else:
                minute.skipped = True
            record.minutes.append(minute)
            print(minute.line(), flush=True)
    finally:
        engine.dispose()


class ProcessSampler:
    """RSS and CPU of each component (and Chromium), CPU as % of one core since the previous sample."""

    def __init__(self, demo: SoakDemo) -> None:
        self.demo = demo
        self.previous: dict[str, Usage] = {}
        self.previous_at = time.monotonic()

    def sample(self, index: int, elapsed_s: float) -> Minute:
        now = time.monotonic()
        usage = {name: group_usage(self.demo.children[name].pid or -1) for name in COMPONENTS}
        usage["chromium"] = chromium_usage()
        span = now - self.previous_at
        cpu = {n: (u.cpu_s - self.previous[n].cpu_s) / span * 100 for n, u in usage.items() if self.previous}
        self.previous, self.previous_at = usage, now
        memory = {n: u.memory for n, u in usage.items()}
        return Minute(index=index, elapsed_s=elapsed_s, load=os.getloadavg()[0], memory=memory, cpu=cpu, episodes=0)


def browser_sample(instruments: Instruments, minute: Minute, screenshot: bool, folder: Path | None) -> None:
    browser = instruments.browser
    assert browser is not None
    minute.toy_s = browser.draw_s(instruments.toy_url)
    minute.overview_s = browser.draw_s(instruments.overview_url)
    minute.js_heap = browser.js_heap_bytes()
    minute.watcher_drawn = browser.watcher_drawn()
    minute.watcher_age_s = browser.watcher_data_age_s()
    if screenshot and folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        browser.screenshot(folder / f"overview-minute-{minute.index:02d}.png")


def timeline_of(record: Recorder, started: datetime, ended: datetime) -> Timeline:
    """Spans from the phase changes as applied; before the first: ``startup``; the last ends when the run did."""
    spans = []
    first = record.phase_starts[0][0] if record.phase_starts else ended
    spans.append(PhaseSpan(-1, "startup", started, first))
    for i, (at, cycle, name) in enumerate(record.phase_starts):
        end = record.phase_starts[i + 1][0] if i + 1 < len(record.phase_starts) else ended
        spans.append(PhaseSpan(cycle, name, at, end))
    return Timeline(spans)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0, help="length, rounded up to whole cycles (default 30)")
    parser.add_argument("--cycle-s", type=float, default=180.0, help="the failure cycle (default 180, the demo's)")
    parser.add_argument("--rate", type=float, default=3.0, help="traffic: calls per second (default 3, the demo's)")
    parser.add_argument("--draw-timeout-s", type=float, default=45.0, help="longest wait for a page to be drawn")
    parser.add_argument("--dir", type=Path, default=None, help="the demo's folder (default: a temporary one)")
    parser.add_argument("--screenshots", type=Path, default=None, help="save Overview screenshots in this folder")
    parser.add_argument(
        "--screenshot-minutes", type=int, nargs="*", default=None, help="minutes to screenshot (default: 1, mid, last)"
    )
    parser.add_argument("--write-results", action="store_true", help="rewrite the soak section of RESULTS.md")
    parser.add_argument("--judge", type=Path, default=None, help="judge the run kept in this folder again, no run")
    args = parser.parse_args(argv)
    if args.judge is not None:
        return report(*load_run(args.judge, args.write_results))
    if not os.access("/usr/bin/chromium", os.X_OK):
        sys.exit("/usr/bin/chromium is missing: apt-get install -y chromium")
    args.cycles = max(1, math.ceil(args.minutes * 60 / args.cycle_s - 1e-9))
    total_min = int(args.cycles * args.cycle_s // 60)
    if args.screenshot_minutes is None:
        args.screenshot_minutes = [1, total_min // 2, total_min]

    folder = args.dir or Path(tempfile.mkdtemp(prefix="pulsegate-soak-"))
    ports = dict.fromkeys(("dashboard", "worker", "emulator", "sink"), 0)
    plan = make_plan(folder, cycle_s=args.cycle_s, rate=args.rate, ports=ports)
    print(
        f"soak: {args.cycles} cycles of {args.cycle_s:g} s ({args.cycles * args.cycle_s / 60:g} min) at "
        f"{args.rate:g} calls/s; warm-up = the first cycle ({args.cycle_s:g} s); demo folder {plan.directory}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    started = datetime.now(UTC)
    with (plan.directory / "soak-console.log").open("w", encoding="utf-8") as console:
        demo = SoakDemo(plan, args, console)
        status = demo.run()
    ended = datetime.now(UTC)
    result = SoakResult(
        args=args,
        plan=plan,
        record=demo.record,
        timeline=timeline_of(demo.record, started, ended),
        demo_status=status,
        warm_up_s=args.cycle_s,
        machine_load=os.getloadavg(),
    )
    saved = {
        "args": {k: v for k, v in vars(args).items() if k in RUN_ARGS},
        "record": demo.record.to_json(),
        "started": started.isoformat(),
        "ended": ended.isoformat(),
        "demo_status": status,
        "machine_load": result.machine_load,
    }
    (plan.directory / RUN_FILE).write_text(json.dumps(saved, indent=1))
    code = report(result, args.write_results)
    if args.dir is None and code == 0:
        shutil.rmtree(plan.directory, ignore_errors=True)
    else:
        print(f"logs, store and measurements kept in {plan.directory} (judge again: --judge {plan.directory})")
    return code


def load_run(folder: Path, write_results: bool) -> tuple[SoakResult, bool]:
    """A finished run, from its folder's ``soak-run.json`` and store, to judge again."""
    saved = json.loads((folder / RUN_FILE).read_text())
    state = json.loads((folder / "demo.json").read_text())
    args = argparse.Namespace(**saved["args"], write_results=write_results)
    plan = DemoPlan(
        directory=folder.resolve(),
        database_url=state["database_url"],
        ports=state["ports"],
        keys=DemoKeys.generate(),
        admin_token=state["admin_token"],
        cycle_s=args.cycle_s,
        rate=args.rate,
    )
    record = Recorder.from_json(saved["record"])
    started, ended = datetime.fromisoformat(saved["started"]), datetime.fromisoformat(saved["ended"])
    result = SoakResult(
        args=args,
        plan=plan,
        record=record,
        timeline=timeline_of(record, started, ended),
        demo_status=saved["demo_status"],
        warm_up_s=args.cycle_s,
        machine_load=tuple(saved["machine_load"]),
    )
    return result, write_results


def report(result: SoakResult, write_results: bool) -> int:
    """Judge, print the report (and write it to RESULTS.md); 1 when an assertion failed."""
    verdicts = judge(result)
    body = render(result, verdicts)
    print()
    print(body)
    if write_results:
        print(f"\nwrote {write_section('soak', body)}")
    failed = [v.name for v in verdicts if not v.ok]
    print(f"\nsoak: {'FAILED: ' + ', '.join(failed) if failed else 'every assertion met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
