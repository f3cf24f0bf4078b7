"""Calls during a database outage: AIClient latency with the store up, cut and restored (issue 4, "Performance").

One run starts the emulator (``python -m pulsegate.emulator``) in its own process pinned to CPU 1 (budgets raised with
``PUT /_emulator/scenario``), pins this process to CPU 0, creates a scratch PostgreSQL database on 127.0.0.1:5432
(dropped at the end) and routes the recorder's engine through the loopback TCP proxy of benchmarks/support/tcp_proxy.py,
run in a child process of its own so its pump threads never hold this process's GIL. Then, at concurrency 1 and 8,
in interleaved rounds:

* baseline  — the database is reachable; the recorder writes batches as usual;
* outage    — the proxy is cut (open connections reset, new ones refused): every batch fails and goes to the disk
  spool (JSON + fsync), replays are retried every second and fail;
* recovery  — the proxy is restored: the spool is replayed into the database while calls go on.

Between phases (outside the timed window) the recorder is flushed, so each phase pays for its own rows. Per phase:
p50/p95/p99 of whole ``generate_response`` calls (all rounds pooled), and the p50/p99 of the ``record()`` calls the
call path made (timed around the recorder's method). Separately: ``record()`` in a tight loop on a detached
``AttemptRecord`` into an idle recorder (ns per call, best of 5).

Goals: outage p99 ÷ baseline p99 <= 1.2 (pooled over rounds, at each concurrency); ``record()`` <= 5 µs.
At the end: rows in the database == calls made (timed + warm-up), no duplicate ids, the spool empty.
Exit status 0 = goals met, 3 = a goal missed, 1 = verification failed.

    .venv/bin/python benchmarks/outage.py                  # ~1.5 min, prints a table and PASS/MISS
    .venv/bin/python benchmarks/outage.py --write-results  # also rewrites its section of RESULTS.md
    .venv/bin/python benchmarks/outage.py --profile        # also cProfile (all threads' wall time) of a phase pair
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from results import machine, write_section
from support import ScratchPostgres, can_pin, free_port, start_emulator, stop

ROOT = Path(__file__).resolve().parents[1]

from pulsegate import (  # noqa: E402
    AIClient,
    ModelConfig,
    migrations,
)
from pulsegate.core.recording import AttemptRecord, SqlRecorder  # noqa: E402
from pulsegate.core.settings import load_settings  # noqa: E402
from pulsegate.core.store import create_store_engine  # noqa: E402

SECTION = "outage"
PG_SERVER = os.environ.get("PULSEGATE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SCENARIO = {"defaults": {"requests": 1_000_000_000, "tokens": 1_000_000_000_000}}
MESSAGES = [{"role": "user", "content": "Summarise the benchmark run in one short sentence please."}]
MODEL = ModelConfig(provider="anthropic", model="claude-sonnet-4-6", max_tokens=256)
KEYS = [f"sk-ant-bench-{n}-{'x' * 24}" for n in ("a", "b", "c")]
PHASES = ("baseline", "outage", "recovery")
P99_RATIO_GOAL = 1.2
APPEND_GOAL_US = 5.0
CLIENT_CPU, EMULATOR_CPU = 0, 1


# -- processes ------------------------------------------------------------------------------------------------------
class ProxyProcess:
    """benchmarks/support/tcp_proxy.py's ``TcpProxy`` in a child process, driven by lines on its stdin."""

    def __init__(self, host: str, port: int) -> None:
        env = dict(os.environ)
        command = [sys.executable, str(Path(__file__).resolve()), "--proxy-child", f"{host}:{port}"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def _command(self, word: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ok":
            raise SystemExit(f"the proxy did not acknowledge {word!r}")

    def cut(self) -> None:
        self._command("cut")

    def restore(self) -> None:
        self._command("restore")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._command("close")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def proxy_child(target: str) -> int:
    from support.tcp_proxy import TcpProxy

    host, port = target.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    print(proxy.port, flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "cut":
            proxy.cut()
        elif word == "restore":
            proxy.restore()
        elif word == "close":
            proxy.close()
            print("ok", flush=True)
            return 0
        print("ok", flush=True)
    proxy.close()
    return 0


# -- measuring ------------------------------------------------------------------------------------------------------
@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)  # seconds per call
    record_ns: list[int] = field(default_factory=list)  # ns per record() on the call path
    per_round_p99: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    spooled: int = 0  # rows the recorder spooled during the phase
    replayed: int = 0  # rows replayed from the spool during the phase


class TimedRecorder:
    """Times each ``record()`` the call path makes (the runner looks ``recorder.record`` up per call)."""

    def __init__(self, recorder: SqlRecorder) -> None:
        self.recorder = recorder
        self.samples: list[int] = []
        self.count = 0
        inner = recorder.record
        clock = time.perf_counter_ns
        samples = self.samples

        def record(attempt: AttemptRecord) -> None:
            began = clock()
            inner(attempt)
            samples.append(clock() - began)

        recorder.record = record  # type: ignore[method-assign]

    def take(self) -> list[int]:
        out = self.samples[:]
        self.count += len(out)
        self.samples.clear()
        return out


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run_batch(call: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> tuple[list[float], float]:
    latencies = [0.0] * calls
    indices = iter(range(calls))

    async def worker() -> None:
        for index in indices:
            start = time.perf_counter()
            await call()
            latencies[index] = time.perf_counter() - start

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def append_cost_ns(spool: Path, loops: int = 200_000) -> float:
    """ns per ``record()`` of one detached AttemptRecord into an idle recorder (writer never woken): best of 5."""
    engine = create_store_engine(f"sqlite:///{spool / 'unused.db'}")
    recorder = SqlRecorder(engine, max_buffer=loops + 1, batch_size=10**9, interval_s=3600, spool_dir=spool)
    attempt = AttemptRecord(
        ts=datetime.now(UTC),
        call_id=uuid.uuid4(),
        attempt=1,
        provider="anthropic",
        model="claude-sonnet-4-6",
        outcome="success",
        latency_ms=812.5,
        instance_id="bench-host",
        is_final=True,
        key_label="Primary",
        key_fingerprint="0123456789ab",
        input_tokens=120,
        output_tokens=80,
        cost_usd=0.0012,
    )
    record = recorder.record
    best = float("inf")
    for _ in range(5):
        gc.collect()
        started = time.perf_counter_ns()
        for _ in range(loops):
            record(attempt)
        best = min(best, (time.perf_counter_ns() - started) / loops)
        recorder._buffer.clear()  # nothing to write: only the call path is measured
    recorder.close()
    engine.dispose()
    return best


async def measure(args: argparse.Namespace, url: str, engine: sa.Engine, proxy: ProxyProcess, spool: Path) -> dict:
    values = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_RPM": "10000000"}
    for index, key in enumerate(KEYS):
        values["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    settings = load_settings(values, env_file=None)
    recorder = SqlRecorder(engine, spool_dir=spool)
    timed = TimedRecorder(recorder)
    client = AIClient(settings, recorder=recorder)
    calls_made = 0

    async def call() -> Any:
        nonlocal calls_made
        calls_made += 1
        return await client.generate_response(MODEL, MESSAGES)

    concurrencies = (1, args.concurrency)
    sizes = {1: args.calls_c1, args.concurrency: args.calls_high}
    for concurrency in concurrencies:  # warm-up: connection pools, the staging table, lazily built SDK parts
        await run_batch(call, args.warmup, concurrency)
    if not recorder.flush(timeout_s=30):
        raise SystemExit(f"warm-up rows were not written: {recorder.stats()}")
    warmup_calls = calls_made
    timed.take()

    phases: dict[tuple[int, str], Phase] = {(c, p): Phase() for c in concurrencies for p in PHASES}
    outage_spooled: list[int] = []
    started = time.perf_counter()
    for round_no in range(args.rounds):
        order = concurrencies if round_no % 2 == 0 else tuple(reversed(concurrencies))
        for concurrency in order:
            for name in PHASES:
                if name == "outage":
                    proxy.cut()
                elif name == "recovery":
                    proxy.restore()
                before = recorder.stats()
                gc.collect()
                latencies, wall = await run_batch(call, sizes[concurrency], concurrency)
                after = recorder.stats()
                phase = phases[(concurrency, name)]
                phase.latencies += latencies
                phase.record_ns += timed.take()
                phase.per_round_p99.append(quantile(latencies, 0.99))
                phase.wall_s += wall
                phase.spooled += after["spooled"] - before["spooled"]
                phase.replayed += after["replayed"] - before["replayed"]
                # the phase's leftover rows are written (or spooled) before the next phase starts, untimed
                done = recorder.flush(timeout_s=60)
                if name == "outage":
                    outage_spooled.append(recorder.stats()["spool_pending"])
                elif not done:
                    raise SystemExit(f"the recorder did not catch up after {name}: {recorder.stats()}")
    elapsed = time.perf_counter() - started
    recorder.record = SqlRecorder.record.__get__(recorder)  # type: ignore[method-assign]
    await client.aclose()
    ok = recorder.flush(timeout_s=60)
    recorder.close()
    return {
        "phases": phases,
        "calls": calls_made,
        "warmup_calls": warmup_calls,
        "recorded": timed.count,
        "flushed": ok,
        "stats": recorder.stats(),
        "outage_spool_rows": outage_spooled,
        "elapsed": elapsed,
        "concurrencies": concurrencies,
    }


def verify(engine: sa.Engine, result: dict, spool: Path) -> tuple[list[str], bool]:
    with engine.connect() as connection:
        rows, distinct = connection.execute(sa.text("SELECT COUNT(*), COUNT(DISTINCT id) FROM api_usage_metrics")).one()
        rollup = connection.execute(sa.text("SELECT COALESCE(SUM(calls), 0) FROM metric_rollups_1h")).scalar_one()
    spool_bytes = sum(p.stat().st_size for p in spool.rglob("*") if p.is_file() and p.suffix != ".lock")
    stats = result["stats"]
    expected = result["calls"]
    warmup, pending, outage_rows = result["warmup_calls"], stats["spool_pending"], result["outage_spool_rows"]
    checks = [
        (rows == expected, f"rows in api_usage_metrics {rows:,} == calls made {expected:,} (incl. {warmup} warm-up)"),
        (distinct == rows, f"distinct ids {distinct:,} == rows {rows:,} (duplicates: {rows - distinct})"),
        (int(rollup) == expected, f"hourly rollup calls {int(rollup):,} == calls made {expected:,}"),
        (pending == 0 and result["flushed"], f"spool empty after flush: pending rows {pending}, bytes {spool_bytes}"),
        (stats["lost"] == 0 and stats["rejected"] == 0, f"lost {stats['lost']}, rejected {stats['rejected']}"),
        (min(outage_rows) > 0, f"rows in the spool at the end of each outage phase: {outage_rows}"),
    ]
    lines = [f"- {'ok ' if good else 'BAD'} {text}" for good, text in checks]
    lines.append(
        f"- recorder: written {stats['written']:,}, spooled {stats['spooled']:,}, replayed {stats['replayed']:,}, "
        f"write failures {stats['write_failures']}, duplicates skipped on replay {stats['duplicates_skipped']}"
    )
    return lines, all(good for good, _ in checks)


def report(result: dict, append_ns: float) -> tuple[list[str], list[str], bool]:
    table = [
        "| concurrency | phase | calls | calls/s | p50 ms | p95 ms | p99 ms | p99 per round (min–max) ms | "
        "record() p50 / p99 µs | rows spooled / replayed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    goals = ["| goal | measured | target | verdict |", "|---|---|---|---|"]
    met = True
    for concurrency in result["concurrencies"]:
        for name in PHASES:
            phase: Phase = result["phases"][(concurrency, name)]
            lat = phase.latencies
            rounds = phase.per_round_p99
            table.append(
                f"| {concurrency} | {name} | {len(lat):,} | {len(lat) / phase.wall_s:,.0f} | "
                f"{quantile(lat, 0.5) * 1e3:.3f} | {quantile(lat, 0.95) * 1e3:.3f} | {quantile(lat, 0.99) * 1e3:.3f} | "
                f"{min(rounds) * 1e3:.2f}–{max(rounds) * 1e3:.2f} | {quantile(phase.record_ns, 0.5) / 1e3:.2f} / "
                f"{quantile(phase.record_ns, 0.99) / 1e3:.2f} | {phase.spooled:,} / {phase.replayed:,} |"
            )
        base = result["phases"][(concurrency, "baseline")]
        for name in ("outage", "recovery"):
            other = result["phases"][(concurrency, name)]
            ratio = quantile(other.latencies, 0.99) / quantile(base.latencies, 0.99)
            paired = [o / b for o, b in zip(other.per_round_p99, base.per_round_p99, strict=True)]
            judged = name == "outage"
            good = ratio <= P99_RATIO_GOAL
            met &= good or not judged
            goals.append(
                f"| concurrency {concurrency}: {name} p99 ÷ baseline p99 (pooled) | **{ratio:.2f}×** (per-round "
                f"median {statistics.median(paired):.2f}×, {min(paired):.2f}–{max(paired):.2f}) | "
                f"{'≤ 1.2×' if judged else '(info)'} | {('PASS' if good else 'MISS') if judged else '—'} |"
            )
    good = append_ns / 1000 <= APPEND_GOAL_US
    met &= good
    goals.append(
        f"| `record()` tight loop, detached AttemptRecord, idle writer | **{append_ns / 1000:.2f} µs** "
        f"({append_ns:.0f} ns) | ≤ {APPEND_GOAL_US:g} µs | {'PASS' if good else 'MISS'} |"
    )
    outage_ns = [ns for c in result["concurrencies"] for ns in result["phases"][(c, "outage")].record_ns]
    good = quantile(outage_ns, 0.99) / 1000 <= APPEND_GOAL_US
    met &= good
    goals.append(
        f"| `record()` p99 on the call path during the outage | **{quantile(outage_ns, 0.99) / 1000:.2f} µs** | "
        f"≤ {APPEND_GOAL_US:g} µs | {'PASS' if good else 'MISS'} |"
    )
    return table, goals, met


# -- profiling ------------------------------------------------------------------------------------------------------
async def profile(args: argparse.Namespace, url: str, engine: sa.Engine, proxy: ProxyProcess, spool: Path) -> None:
    """Per-phase CPU of the recorder's writer thread vs the whole process, and a cProfile of the writer thread."""
    import cProfile
    import pstats
    import threading

    values = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_RPM": "10000000", "ANTHROPIC_API_KEY": KEYS[0]}
    client_settings = load_settings(values, env_file=None)
    recorder = SqlRecorder(engine, spool_dir=spool)
    client = AIClient(client_settings, recorder=recorder)
    writer_profile = cProfile.Profile()
    threading.setprofile(None)
    tid = recorder._thread.native_id

    def thread_cpu() -> float:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def call() -> Any:
        return await client.generate_response(MODEL, MESSAGES)

    await run_batch(call, args.warmup, args.concurrency)
    recorder.flush()
    calls = args.calls_high * 3
    print(f"\n=== profile: {calls} calls at concurrency {args.concurrency} per phase ===")
    for name in PHASES:
        if name == "outage":
            proxy.cut()
        elif name == "recovery":
            proxy.restore()
        cpu0, thr0 = time.process_time(), thread_cpu()
        original = recorder._cycle
        recorder._cycle = lambda forced, original=original: writer_profile.runcall(original, forced)  # type: ignore[method-assign]
        latencies, wall = await run_batch(call, calls, args.concurrency)
        recorder._cycle = original  # type: ignore[method-assign]
        cpu, thr = time.process_time() - cpu0, thread_cpu() - thr0
        print(
            f"{name:9s} p99 {quantile(latencies, 0.99) * 1e3:.3f} ms, process CPU {cpu / calls * 1e6:.0f} µs/call, "
            f"of which writer thread {thr / calls * 1e6:.0f} µs/call, wall {wall:.1f} s"
        )
        recorder.flush(timeout_s=60)
    await client.aclose()
    recorder.flush(timeout_s=60)
    recorder.close()
    with tempfile.NamedTemporaryFile(suffix=".prof") as out:
        writer_profile.dump_stats(out.name)
        print("\nwriter thread (all three phases), top by cumulative time:")
        pstats.Stats(out.name).sort_stats("cumulative").print_stats(args.profile_top)


# -- main -----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--calls-c1", type=int, default=1200, help="calls per phase per round at concurrency 1 (1200)")
    parser.add_argument("--calls-high", type=int, default=2400, help="calls per phase per round at high concurrency")
    parser.add_argument("--concurrency", type=int, default=8, help="the high concurrency (default 8)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up calls per concurrency (default 200)")
    parser.add_argument("--write-results", action="store_true", help="rewrite its section of benchmarks/RESULTS.md")
    parser.add_argument("--profile", action="store_true", help="after the timed run, profile the writer thread")
    parser.add_argument("--profile-top", type=int, default=25, help="rows of the profile (default 25)")
    parser.add_argument("--proxy-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.proxy_child:
        return proxy_child(args.proxy_child)

    for name in (
        "pulsegate.core.recording.sql",
        "pulsegate.core.ops.heartbeat",
    ):  # no outage start/end warnings per phase
        logging.getLogger(name).setLevel(logging.ERROR)
    pin = can_pin()
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})
    else:
        print("warning: fewer than 2 CPUs usable; client and emulator are not pinned apart", file=sys.stderr)
    scratch = ScratchPostgres(PG_SERVER, prefix="pulsegate_bench_outage")
    database = scratch.create()
    migrations.upgrade(database.render_as_string(hide_password=False))
    port = free_port()
    emulator = start_emulator(port, pin=pin, scenario=SCENARIO)
    proxy = ProxyProcess(database.host or "127.0.0.1", database.port or 5432)
    via_proxy = database.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    engine = create_store_engine(via_proxy)
    direct = create_store_engine(database.render_as_string(hide_password=False))
    url = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="pulsegate-outage-") as tmp:
            spool = Path(tmp) / "spool"
            print(f"emulator pid {emulator.pid} on :{port}; proxy :{proxy.port} → {database.port}; pinned: {pin}")
            append_ns = append_cost_ns(Path(tmp) / "append")
            result = asyncio.run(measure(args, url, engine, proxy, spool))
            table, goals, met = report(result, append_ns)
            checks, verified = verify(direct, result, spool)
            print("\n" + "\n".join(table) + "\n\n" + "\n".join(goals) + "\n\nverification:\n" + "\n".join(checks))
            print(f"\ntimed part took {result['elapsed']:.0f} s")
            print("\nPASS" if met and verified else ("\nMISS" if verified else "\nFAIL (verification)"))
            if args.write_results:
                write_results(argv, table, goals, checks, result, args)
            if args.profile:
                asyncio.run(profile(args, url, engine, proxy, Path(tmp) / "spool-profile"))
        return 1 if not verified else (0 if met else 3)
    finally:
        engine.dispose()
        direct.dispose()
        proxy.close()
        stop(emulator, 10)
        scratch.drop()


def write_results(
    argv: list[str] | None, table: list[str], goals: list[str], checks: list[str], result: dict, args: Any
) -> None:
    shown = " ".join(sys.argv[1:] if argv is None else argv)
    body = f"""## Calls during a database outage

Command (run {time.strftime("%Y-%m-%d")}, timed part {result["elapsed"]:.0f} s):
`.venv/bin/python benchmarks/outage.py {shown}`

Machine: {machine()}.

AIClient (3 Anthropic keys, `ANTHROPIC_RPM=10000000`) against the emulator in its own process (CPU {EMULATOR_CPU};
the benchmark on CPU {CLIENT_CPU}), recording through `SqlRecorder` (defaults: batch 1000 / 1 s, retry 1 s) to a
scratch PostgreSQL database reached through the loopback TCP proxy of benchmarks/support/tcp_proxy.py in a child
process.
{args.rounds} interleaved rounds of baseline (proxy open) → outage (proxy cut: batches go to the disk spool) →
recovery (proxy restored: the spool is replayed while calls go on), {args.calls_c1} calls per phase at concurrency 1
and {args.calls_high} at concurrency {args.concurrency}, after {args.warmup} warm-up calls per concurrency; the
recorder is flushed between phases outside the timed window. Percentiles pool every round's calls of a phase.
`record()` p50/p99 are timed around the recorder's method on the call path.

{chr(10).join(table)}

{chr(10).join(goals)}

Verification after the run:

{chr(10).join(checks)}
"""
    print(f"wrote {write_section(SECTION, body)}")


if __name__ == "__main__":
    sys.exit(main())
