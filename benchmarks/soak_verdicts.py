"""The soak's figures and verdicts: what the measuring loop recorded each minute, what the store and the sink hold at
the end, and each assertion's verdict (the report is :mod:`soak_report`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock

from soak_judge import (
    AlertVerdict,
    Notice,
    Tally,
    Timeline,
    calls_by_phase,
    false_statements,
    growth_after,
    judge_notices,
)
from soak_procs import MIB
from soak_store import calls, episode_starts, outbox, received_notices

from pulsegate.core.alerts.config import load_alert_config
from pulsegate.core.settings import load_settings
from pulsegate.core.store import create_store_engine
from pulsegate.jobs.cli.demo.scenario import EXPECTED_ALERTS, PHASE_PLAN
from pulsegate.jobs.cli.demo.setup import DemoPlan

DRAW_GOAL = 3.0
RSS_GOAL = 20 * MIB
HEAP_GOAL = 50 * MIB
ANSWERED_GOAL = 0.99
ANSWERED_PHASES = ("calm", "recovery")
COMPONENTS = ("emulator", "worker", "traffic", "sink", "dashboard")
SHOWN_PROBLEMS = 25
#: The watcher tab's data counts as stale beyond this age (its caption is to the minute; it refreshes every 10 s).
STALE_S = 150.0


@dataclass
class Minute:
    """One sample, taken ``elapsed_s`` after the scenario started: memory at that moment, CPU (% of one core) since
    the previous sample, then the draw times measured right after."""

    index: int
    elapsed_s: float
    load: float
    memory: dict[str, int]
    cpu: dict[str, float]
    episodes: int
    toy_s: float | None = None
    overview_s: float | None = None
    js_heap: int | None = None
    watcher_drawn: bool = False
    watcher_age_s: float | None = None  # how old the data the watcher tab shows is (to the minute)
    skipped: bool = False  # the browser's measurements were skipped: an earlier draw overran

    def line(self) -> str:
        def secs(value: float | None) -> str:
            return "—" if value is None else f"{value:.2f}s"

        rss = " ".join(f"{n[:4]} {self.memory.get(n, 0) / MIB:.0f}" for n in (*COMPONENTS, "chromium"))
        cpu = " ".join(f"{n[:4]} {self.cpu[n]:.0f}" for n in COMPONENTS if n in self.cpu)
        heap = "—" if self.js_heap is None else f"{self.js_heap / MIB:.1f}"
        draws = "draws skipped" if self.skipped else f"overview {secs(self.overview_s)} toy {secs(self.toy_s)}"
        return (
            f"min {self.index:>2}: {draws} episodes {self.episodes} | "
            f"MiB {rss} heap {heap} | CPU% {cpu} | load {self.load:.2f}"
        )


@dataclass
class SoakResult:
    args: argparse.Namespace
    plan: DemoPlan
    record: Any  # soak.Recorder
    timeline: Timeline
    demo_status: int
    warm_up_s: float
    machine_load: tuple[float, float, float]
    # filled by judge()
    calls: list[tuple[datetime, bool]] = field(default_factory=list)
    by_phase: dict[tuple[int, str], Tally] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    alerts: AlertVerdict | None = None
    traffic: dict[str, Any] = field(default_factory=dict)
    alert_timings: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)


def toy_median(result: SoakResult) -> float | None:
    values = [m.toy_s for m in result.record.minutes if m.toy_s is not None]
    return statistics.median(values) if values else None


def _judge_draws(result: SoakResult) -> Verdict:
    toy = toy_median(result)
    minutes = result.record.minutes
    if toy is None or not minutes:
        return Verdict("overview draw", False, "no toy page draw measured")
    limit = DRAW_GOAL * toy
    skipped = [m.index for m in minutes if m.skipped]
    minutes = [m for m in minutes if not m.skipped]
    slow = [m for m in minutes if m.overview_s is None or m.overview_s > limit]
    details = [f"minute {m.index}: {m.overview_s:.2f} s = {m.overview_s / toy:.1f} × toy" for m in slow if m.overview_s]
    never = [m.index for m in slow if m.overview_s is None]
    if never:
        timeout = result.args.draw_timeout_s
        details.append(f"not drawn within {timeout:g} s (or showing an exception) at minutes {never}")
    drawn = [m.overview_s for m in minutes if m.overview_s is not None]
    worst = f"worst {max(drawn):.2f} s" if drawn else "never drawn"
    summary = (
        f"{len(minutes) - len(slow)} of {len(minutes)} draws within {DRAW_GOAL:g} × toy ({toy:.2f} s median) = "
        f"{limit:.2f} s; {worst}"
    )
    if skipped:
        details.append(f"not measured at minutes {skipped}: an earlier draw overran the minute")
    stale = [f"{m.index} ({m.watcher_age_s / 60:.0f} min)" for m in minutes if (m.watcher_age_s or 0) > STALE_S]
    if stale:
        details.append(
            f"the watcher tab (open all along) showed data over {STALE_S / 60:.0f} min old at minutes {stale}"
        )
    if not all(m.watcher_drawn for m in minutes):
        blank = [m.index for m in minutes if not m.watcher_drawn]
        details.append(f"the watcher tab (open all along) showed no figure at minutes {blank}")
    return Verdict("overview draw", not slow, summary, details)


def _judge_memory(result: SoakResult) -> tuple[Verdict, Verdict]:
    minutes = result.record.minutes
    details, over = [], []
    for name in COMPONENTS:
        growth = growth_after([(m.elapsed_s, m.memory.get(name)) for m in minutes], result.warm_up_s)
        if growth is None:
            over.append(name)
            details.append(f"{name}: not enough samples after warm-up")
            continue
        line = (
            f"{name}: {growth.at_warm_up / MIB:.1f} → {growth.last / MIB:.1f} MiB ({growth.growth / MIB:+.1f}; "
            f"peak {growth.peak / MIB:.1f})"
        )
        details.append(line)
        if growth.growth > RSS_GOAL:
            over.append(name)
    rss = Verdict(
        "process memory",
        not over,
        f"RSS growth after warm-up ≤ {RSS_GOAL / MIB:.0f} MiB: "
        + ("all met" if not over else f"over: {', '.join(over)}"),
        details,
    )
    heap = growth_after([(m.elapsed_s, m.js_heap) for m in minutes], result.warm_up_s)
    chromium = growth_after([(m.elapsed_s, m.memory.get("chromium")) for m in minutes], result.warm_up_s)
    chromium_line = (
        f"Chromium PSS (all its processes, not judged): {chromium.at_warm_up / MIB:.0f} → {chromium.last / MIB:.0f} MiB"
        if chromium
        else "Chromium PSS: not enough samples"
    )
    if heap is None:
        return rss, Verdict("browser JS heap", False, "JS heap not measured after warm-up", [chromium_line])
    summary = (
        f"watcher tab JS heap {heap.at_warm_up / MIB:.1f} → {heap.last / MIB:.1f} MiB ({heap.growth / MIB:+.1f}; "
        f"peak {heap.peak / MIB:.1f}), limit +{HEAP_GOAL / MIB:.0f} MiB"
    )
    return rss, Verdict("browser JS heap", heap.growth <= HEAP_GOAL, summary, [chromium_line])


def _judge_answered(result: SoakResult) -> Verdict:
    details, bad = [], 0
    judged = set(result.timeline.complete_cycles([p[0] for p in PHASE_PLAN]))
    for (cycle, name), tally in sorted(result.by_phase.items()):
        if name not in ANSWERED_PHASES or cycle not in judged:
            continue
        share = tally.share
        if share is None:
            continue
        if share < ANSWERED_GOAL:
            bad += 1
            details.append(f"{name} of cycle {cycle + 1}: {tally.answered} of {tally.calls} answered ({share:.1%})")
    totals = {n: Tally() for n in ANSWERED_PHASES}
    for (cycle, name), tally in result.by_phase.items():
        if name in totals and cycle in judged:
            totals[name].calls += tally.calls
            totals[name].answered += tally.answered
    shown = "; ".join(
        f"{n} {t.answered}/{t.calls} = {t.share:.1%}" if t.share is not None else f"{n}: no calls"
        for n, t in totals.items()
    )
    return Verdict(
        "answered in calm and recovery", bad == 0, f"≥ {ANSWERED_GOAL:.0%} in every such phase: {shown}", details
    )


def _judge_alerts(result: SoakResult, delivery_problems: list[str]) -> list[Verdict]:
    environ = result.plan.environ()
    with mock.patch.dict(os.environ, environ, clear=True):  # channels read their url_env from the environment
        config = load_alert_config(load_settings(environ, env_file=None))
    rules = {r.id: r for r in config.rules}
    cycles = result.timeline.complete_cycles([p[0] for p in PHASE_PLAN])
    engine = create_store_engine(result.plan.database_url)
    try:
        starts = episode_starts(engine)
    finally:
        engine.dispose()
    alerts = judge_notices(result.notices, starts, result.timeline, EXPECTED_ALERTS, config.channel_names, cycles)
    result.alerts = alerts
    falsehoods: dict[str, list[str]] = {}
    for notice in result.notices:
        for alert in notice.alerts:
            rule = rules.get(alert.rule_id)
            compare = rule.spec.compare if rule is not None else None
            statuses = rule.statuses if rule is not None and rule.kind == "key_unhealthy" else ()
            for problem in false_statements(alert, compare, statuses):
                text = f"{alert.state} {alert.rule_id}: {alert.summary!r} {problem}"
                falsehoods.setdefault(text, []).append(notice.channel)
    result.alert_timings = [
        f"group_wait {config.group_wait_s:g} s, repeat_interval {config.repeat_interval_s:g} s",
        *(_rule_timing(r) for r in config.rules if r.id in {e.rule_id for v in EXPECTED_ALERTS.values() for e in v}),
    ]
    wanted = sum(len(EXPECTED_ALERTS.get(s.name, ())) for s in result.timeline.spans if s.cycle in set(cycles))
    return [
        Verdict(
            "expected alerts",
            not alerts.missing_or_extra and not delivery_problems,
            f"{wanted} expected alerts in {len(cycles)} judged cycles × {len(config.channel_names)} channels: "
            f"{len(alerts.missing_or_extra)} not exactly one firing and one resolved; {len(result.notices)} messages "
            f"received, {len(delivery_problems)} delivery problems",
            delivery_problems + alerts.lines(alerts.missing_or_extra),
        ),
        Verdict(
            "no other alerts",
            not alerts.unexpected,
            f"{len(alerts.unexpected)} notifications of alerts no incident lists",
            alerts.lines(alerts.unexpected),
        ),
        Verdict(
            "quiet calm",
            not alerts.in_calm,
            f"{len(alerts.in_calm)} messages sent during calm phases",
            alerts.lines(alerts.in_calm),
        ),
        Verdict(
            "true texts",
            not falsehoods,
            f"{len(falsehoods)} alert texts contradict their own numbers",
            AlertVerdict.lines(falsehoods),
        ),
    ]


def _rule_timing(rule: Any) -> str:
    parts = [f"`{rule.id}` ({rule.kind}"]
    if rule.threshold is not None:
        parts.append(f"threshold {rule.threshold:g} {rule.spec.unit}".rstrip())
    if rule.window_s:
        parts.append(f"window {rule.window_s:g} s")
    parts.append(f"for {rule.for_s:g} s")
    if rule.min_sample:
        parts.append(f"min_sample {rule.min_sample}")
    return ", ".join(parts) + ")"


def judge(result: SoakResult) -> list[Verdict]:
    engine = create_store_engine(result.plan.database_url)
    try:
        result.calls = calls(engine)
        result.by_phase = calls_by_phase(result.calls, result.timeline)
        result.notices, delivery_problems = received_notices(outbox(engine), result.record.sink_messages)
    finally:
        engine.dispose()
    stats = result.plan.traffic_stats_file
    result.traffic = json.loads(stats.read_text()) if stats.exists() else {}
    run = Verdict(
        "the run",
        result.record.stopped_early is None and result.demo_status == 0,
        f"demo exit status {result.demo_status}; {result.record.stopped_early or 'ran every cycle to its end'}",
    )
    rss, heap = _judge_memory(result)
    network = Verdict(
        "loopback only",
        not result.record.foreign_requests,
        f"{result.record.requests_seen} requests logged, {len(result.record.foreign_requests)} to other hosts",
        [f"{url} (seen by {source})" for url, source in sorted(result.record.foreign_requests.items())],
    )
    return [
        run,
        _judge_draws(result),
        rss,
        heap,
        _judge_answered(result),
        *_judge_alerts(result, delivery_problems),
        network,
    ]
