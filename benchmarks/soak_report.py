"""The soak's report: verdicts, timings and the per-minute, per-phase and per-rule tables, as Markdown (printed, and
the ``soak`` section of ``benchmarks/RESULTS.md``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from results import machine
from soak_judge import Tally
from soak_procs import MIB
from soak_verdicts import COMPONENTS, SHOWN_PROBLEMS, SoakResult, Verdict, toy_median

from pulsegate.jobs.cli.demo.scenario import EXPECTED_ALERTS, PHASE_PLAN
from pulsegate.jobs.cli.demo.setup import ALERT_INTERVAL_S, HEARTBEAT_INTERVAL_S, PROBE_INTERVAL_S
from pulsegate.jobs.cli.demo.traffic import DEMO_BREAKER

ORDER = {name: i for i, (name, _, _) in enumerate(PHASE_PLAN)}


def _per_minute(result: SoakResult) -> tuple[dict[int, Tally], dict[int, Counter[str]]]:
    started = result.record.scenario_started or datetime.now(UTC)

    def minute_of(moment: datetime) -> int:
        return int((moment - started).total_seconds() // 60) + 1

    tallies: dict[int, Tally] = defaultdict(Tally)
    for moment, ok in result.calls:
        tallies[minute_of(moment)].calls += 1
        tallies[minute_of(moment)].answered += int(ok)
    notes: dict[int, Counter[str]] = defaultdict(Counter)
    for notice in result.notices:
        notes[minute_of(notice.created_at)][notice.channel] += 1
    return tallies, notes


def _phase_at(result: SoakResult, elapsed_s: float) -> str:
    started = result.record.scenario_started
    if started is None:
        return "?"
    span = result.timeline.at(started + timedelta(seconds=max(0.0, elapsed_s - 0.5)))
    return "—" if span is None else span.name.replace("anthropic_529_", "").replace("key_429_", "429 ")


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def render(result: SoakResult, verdicts: list[Verdict]) -> str:
    args = result.args
    toy = toy_median(result)
    lines = [
        "## Soak run (`benchmarks/soak.py`)",
        "",
        f"Command (run {datetime.now(UTC):%Y-%m-%d}): `.venv/bin/python benchmarks/soak.py --minutes {args.minutes:g} "
        f"--cycle-s {args.cycle_s:g}{' --write-results' if args.write_results else ''}`",
        "",
        f"Machine: {machine()}; load average at the end {result.machine_load[0]:.2f} / {result.machine_load[1]:.2f} "
        f"/ {result.machine_load[2]:.2f} (1 / 5 / 15 min).",
        "",
        f"`pulsegate demo`'s processes (SQLite store, {args.rate:g} calls/s) for {args.cycles} cycles of "
        f"{args.cycle_s:g} s, the Overview open in headless Chromium all along; warm-up = the first cycle "
        f"({result.warm_up_s:g} s). Phases (fixed shares of the cycle): "
        + ", ".join(f"{n} {share * args.cycle_s:g} s" for n, share, _ in PHASE_PLAN)
        + f". Probes every {PROBE_INTERVAL_S:g} s, heartbeats every {HEARTBEAT_INTERVAL_S:g} s, alerts evaluated every "
        f"{ALERT_INTERVAL_S:g} s; breaker {DEMO_BREAKER}. Alert timings: " + "; ".join(result.alert_timings) + ".",
        "",
        "### Verdicts",
        "",
    ]
    for v in verdicts:
        lines.append(f"- **{v.name}: {'met' if v.ok else 'FAILED'}** — {v.summary}")
        for detail in v.details[:SHOWN_PROBLEMS]:
            lines.append(f"  - {detail}")
        if len(v.details) > SHOWN_PROBLEMS:
            lines.append(f"  - … and {len(v.details) - SHOWN_PROBLEMS} more")
    tallies, notes = _per_minute(result)
    lines += [
        "",
        f"### Per minute (toy page median {_secs(toy)} s)",
        "",
        "Memory at the minute's end (MiB: RSS of each component's process group; Chromium: PSS of its processes), "
        "CPU over the minute (% of one core), then the draw times measured right after; calls started in the "
        "minute and the share answered; messages the sink received (default = Slack format / discord).",
        "",
        "| min | phase | overview s | × toy | toy s | episodes | emulator | worker | traffic | sink | dashboard "
        "| chromium | JS heap | CPU emu/wrk/trf/snk/dsh | calls | answered | messages | load |",
        "|" + "---|" * 18,
    ]
    for m in result.record.minutes:
        ratio = "—" if m.overview_s is None or not toy else f"{m.overview_s / toy:.1f}"
        drawn = "skipped" if m.skipped else ("not drawn" if m.overview_s is None else f"{m.overview_s:.2f}")
        mem = " | ".join(f"{m.memory.get(n, 0) / MIB:.0f}" for n in (*COMPONENTS, "chromium"))
        cpu = "/".join(f"{m.cpu[n]:.0f}" for n in COMPONENTS) if m.cpu else "—"
        tally = tallies.get(m.index, Tally())
        share = "—" if tally.share is None else f"{tally.share:.1%}"
        sent = notes.get(m.index, Counter())
        heap = "—" if m.js_heap is None else f"{m.js_heap / MIB:.1f}"
        lines.append(
            f"| {m.index} | {_phase_at(result, m.elapsed_s)} | {drawn} | {ratio} | {_secs(m.toy_s)} | "
            f"{m.episodes} | {mem} | {heap} | {cpu} | {tally.calls} | {share} | "
            f"{sent.get('default', 0)}/{sent.get('discord', 0)} | {m.load:.2f} |"
        )
    lines += ["", "### Calls by phase", "", "| cycle | phase | calls | answered |", "|---|---|---|---|"]
    for (cycle, name), tally in sorted(
        result.by_phase.items(), key=lambda item: (item[0][0], ORDER.get(item[0][1], -1))
    ):
        share = "—" if tally.share is None else f"{tally.share:.1%}"
        shown = "—" if cycle < 0 else ("after the last" if cycle >= args.cycles else cycle + 1)
        lines.append(f"| {shown} | {name} | {tally.calls} | {share} |")
    if result.traffic:
        t = result.traffic
        lines += [
            "",
            f"Traffic generator's own tally: {t.get('calls')} calls, {t.get('succeeded')} succeeded, "
            f"{t.get('failed')} failed ({', '.join(f'{k} {v}' for k, v in sorted(t.get('errors', {}).items()))}), "
            f"{t.get('fell_back')} fell back to OpenAI.",
        ]
    lines += _render_alerts(result)
    return "\n".join(lines)


def _render_alerts(result: SoakResult) -> list[str]:
    lines = ["", "### Notifications per rule and channel", "", "| rule | channel | firing | repeat | resolved |"]
    lines.append("|---|---|---|---|---|")
    if result.alerts is None:
        return lines
    per_rule = result.alerts.per_rule
    for rule, channel in sorted({(r, c) for r, c, _ in per_rule}):
        counts = [per_rule.get((rule, channel, t), 0) for t in ("firing", "repeat", "resolved")]
        lines.append(f"| {rule} | {channel} | {counts[0]} | {counts[1]} | {counts[2]} |")
    channels = sorted({c for _, _, _, c in result.alerts.counts})
    lines += [
        "",
        "### Expected alerts per incident",
        "",
        "Firing / resolved messages per channel, from the phase's start to the end of its cycle (expected: 1 / 1).",
        "",
        "| cycle | phase | alert | " + " | ".join(channels) + " |",
        "|---|---|---|" + "---|" * len(channels),
    ]
    for cycle, phase, index in sorted({k[:3] for k in result.alerts.counts}, key=lambda k: (k[0], ORDER[k[1]], k[2])):
        wanted = EXPECTED_ALERTS[phase][index]
        labels = ", ".join(f"{k}={v}" for k, v in sorted(wanted.labels.items()))
        optional = " (may be absent)" if (cycle, phase, index) in result.alerts.optional else ""
        shown = []
        for channel in channels:
            count = result.alerts.counts.get((cycle, phase, index, channel))
            shown.append("—" if count is None else f"{count.firing} / {count.resolved}")
        lines.append(f"| {cycle + 1} | {phase} | {wanted.rule_id} ({labels}){optional} | " + " | ".join(shown) + " |")
    return lines
