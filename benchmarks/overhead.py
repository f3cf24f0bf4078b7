"""AIClient overhead: the raw SDKs vs ``AIClient`` against the emulator in another process (issue 3, "Performance").

One run starts the emulator (``python -m pulsegate.emulator``) in its own process pinned to CPU 1 and pins this process
to CPU 0, then measures, at concurrency 1 and 32, in interleaved rounds:

* raw ``anthropic.AsyncAnthropic(max_retries=0).messages.create`` vs ``AIClient.generate_response`` with 3
  Anthropic keys, limits far above the load, the circuit breaker on and recording ON to a SQLite file;
* the same for ``openai.AsyncOpenAI(max_retries=0).chat.completions.create`` (``--no-openai`` skips it).

Per batch: calls/s, per-call latency (median, p95) and this process's CPU time per call (``getrusage(RUSAGE_SELF)``
user + sys, so the recorder's writer thread is included; a wrapper batch ends with ``recorder.flush()`` inside the
measured CPU window so no batch leaves its rows for the next one). Rounds alternate the order (raw, wrapper /
wrapper, raw) so drift favours neither side; the table shows medians over rounds.

Goals: AIClient CPU per call <= 1.10 x raw (at both concurrencies); added median latency at concurrency 1 <= 0.3 ms.
They are judged on same-round pairs (the median over rounds of each round's AIClient/raw CPU ratio, or p50
difference), which cancels the machine's drift between rounds; the ratio of the medians is printed next to them.
Exit status 0 = every goal met, 3 = a goal missed, 1 = the recorder lost rows.

    .venv/bin/python benchmarks/overhead.py                     # ~100 s, prints a table and PASS/MISS
    .venv/bin/python benchmarks/overhead.py --write-results     # also updates RESULTS.md
    .venv/bin/python benchmarks/overhead.py --profile-only      # cProfile of the wrapper vs raw, no timing table
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai

ROOT = Path(__file__).resolve().parents[1]

from results import machine, write_section  # noqa: E402
from support import can_pin, free_port, start_emulator, stop  # noqa: E402

from pulsegate import AIClient, ModelConfig  # noqa: E402
from pulsegate.core.recording import SqlRecorder  # noqa: E402
from pulsegate.core.settings import load_settings  # noqa: E402
from pulsegate.core.store import create_store_engine  # noqa: E402

SECTION = "overhead"
SCENARIO = {"defaults": {"requests": 1_000_000_000, "tokens": 1_000_000_000_000}}
PROMPT = "Summarise the benchmark run in one short sentence please."
MESSAGES = [{"role": "user", "content": PROMPT}]
MAX_TOKENS = 256
ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-4.1"
ANTHROPIC_KEYS = [f"sk-ant-bench-{n}-{'x' * 24}" for n in ("a", "b", "c")]
OPENAI_KEYS = [f"sk-bench-openai-{n}-{'y' * 24}" for n in ("a", "b", "c")]
HUGE_RPM = "10000000"
CPU_RATIO_GOAL = 1.10
ADDED_LATENCY_GOAL_MS = 0.3
CLIENT_CPU, EMULATOR_CPU = 0, 1

Call = Callable[[], Awaitable[Any]]


# -- processes ------------------------------------------------------------------------------------------------------
def proc_cpu_seconds(path: str) -> float:
    """utime + stime from a /proc/.../stat file (clock-tick resolution)."""
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, steal) CPU-seconds of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def rusage_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- one batch ------------------------------------------------------------------------------------------------------
@dataclass
class Sample:
    calls: int
    wall_s: float
    cpu_s: float
    latencies: list[float]
    emulator_cpu_s: float
    recorder_cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return self.calls / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.calls * 1e6

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies, n=20, method="inclusive")[18] * 1000


@dataclass
class Meters:
    emulator_stat: str
    recorder_stat: str | None


async def run_batch(
    call: Call, calls: int, concurrency: int, meters: Meters, flush: Callable[[], Any] | None, collect: bool = True
) -> Sample:
    latencies = [0.0] * calls
    indices = iter(range(calls))

    async def worker() -> None:
        for index in indices:
            start = time.perf_counter()
            await call()
            latencies[index] = time.perf_counter() - start

    if flush is not None:
        flush()
    if collect:
        gc.collect()
    emu0 = proc_cpu_seconds(meters.emulator_stat)
    rec0 = proc_cpu_seconds(meters.recorder_stat) if meters.recorder_stat and flush else 0.0
    cpu0 = rusage_cpu()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    if flush is not None:
        flush()  # the rows this batch produced are written on this batch's account
    cpu = rusage_cpu() - cpu0
    rec = proc_cpu_seconds(meters.recorder_stat) - rec0 if meters.recorder_stat and flush else 0.0
    emu = proc_cpu_seconds(meters.emulator_stat) - emu0
    return Sample(calls, wall, cpu, latencies, emu, rec)


# -- the clients ----------------------------------------------------------------------------------------------------
@dataclass
class Case:
    provider: str
    raw: Call
    wrapper: Call
    samples: dict[tuple[int, str], list[Sample]] = field(default_factory=dict)


def build_wrapper(url: str, database_url: str) -> AIClient:
    from pulsegate import migrations

    migrations.upgrade(database_url)
    values = {
        "ANTHROPIC_BASE_URL": url,
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_RPM": HUGE_RPM,
        "OPENAI_RPM": HUGE_RPM,
    }
    for index, (a_key, o_key) in enumerate(zip(ANTHROPIC_KEYS, OPENAI_KEYS, strict=True)):
        suffix = "" if index == 0 else f"_{index + 1}"
        values[f"ANTHROPIC_API_KEY{suffix}"] = a_key
        values[f"OPENAI_API_KEY{suffix}"] = o_key
    settings = load_settings(values, env_file=None)
    return AIClient(settings, recorder=SqlRecorder(create_store_engine(database_url)))


def build_cases(url: str, client: AIClient, with_openai: bool) -> list[Case]:
    raw_anthropic = anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEYS[0], base_url=url, max_retries=0)
    a_config = ModelConfig(provider="anthropic", model=ANTHROPIC_MODEL, max_tokens=MAX_TOKENS)

    def raw_a() -> Awaitable[Any]:
        return raw_anthropic.messages.create(model=ANTHROPIC_MODEL, max_tokens=MAX_TOKENS, messages=MESSAGES)

    def wrap_a() -> Awaitable[Any]:
        return client.generate_response(a_config, MESSAGES)

    cases = [Case("anthropic", raw_a, wrap_a)]
    if with_openai:
        raw_openai = openai.AsyncOpenAI(api_key=OPENAI_KEYS[0], base_url=f"{url}/v1", max_retries=0)
        o_config = ModelConfig(provider="openai", model=OPENAI_MODEL, max_tokens=MAX_TOKENS)

        def raw_o() -> Awaitable[Any]:
            # the same body AIClient's OpenAI adapter sends
            return raw_openai.chat.completions.create(
                model=OPENAI_MODEL, max_completion_tokens=MAX_TOKENS, messages=MESSAGES
            )

        def wrap_o() -> Awaitable[Any]:
            return client.generate_response(o_config, MESSAGES)

        cases.append(Case("openai", raw_o, wrap_o))
    return cases


async def check_answers(cases: list[Case]) -> None:
    for case in cases:
        raw = await case.raw()
        wrapped = await case.wrapper()
        text = raw.content[0].text if case.provider == "anthropic" else raw.choices[0].message.content
        if not text or wrapped.text != text or wrapped.provider != case.provider:
            raise SystemExit(f"{case.provider}: raw and wrapped answers differ: {text!r} vs {wrapped.text!r}")


# -- the run --------------------------------------------------------------------------------------------------------
async def measure(args: argparse.Namespace, url: str, database_url: str, emulator_pid: int) -> dict[str, Any]:
    client = build_wrapper(url, database_url)
    cases = build_cases(url, client, not args.no_openai)
    await check_answers(cases)
    recorder = client.recorder
    assert isinstance(recorder, SqlRecorder)
    thread_id = recorder._thread.native_id  # the writer thread, to split its CPU out (informational)
    meters = Meters(f"/proc/{emulator_pid}/stat", f"/proc/self/task/{thread_id}/stat" if thread_id else None)
    concurrencies = (1, args.concurrency)
    sizes = {1: args.calls_c1, args.concurrency: args.calls_c32}
    started = time.perf_counter()
    busy0, steal0 = machine_busy()
    own0, emu0 = rusage_cpu(), proc_cpu_seconds(meters.emulator_stat)

    for case in cases:  # warm-up: connection pools, caches, lazily built SDK resources
        for variant, call in (("raw", case.raw), ("wrapper", case.wrapper)):
            flush = recorder.flush if variant == "wrapper" else None
            for concurrency in concurrencies:
                await run_batch(call, max(args.warmup, concurrency), concurrency, meters, flush)

    for round_index in range(args.rounds):
        for concurrency in concurrencies:
            for case in cases:
                order = ("raw", "wrapper") if round_index % 2 == 0 else ("wrapper", "raw")
                for variant in order:
                    call = case.raw if variant == "raw" else case.wrapper
                    flush = recorder.flush if variant == "wrapper" else None
                    sample = await run_batch(call, sizes[concurrency], concurrency, meters, flush)
                    case.samples.setdefault((concurrency, variant), []).append(sample)
        print(f"  round {round_index + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", flush=True)

    wall = time.perf_counter() - started
    busy1, steal1 = machine_busy()
    others = (busy1 - busy0) - (rusage_cpu() - own0) - (proc_cpu_seconds(meters.emulator_stat) - emu0)
    load = {"others": max(0.0, others) / wall, "steal": (steal1 - steal0) / wall}
    await client.aclose()
    expected_rows = sum(s.calls for case in cases for c in concurrencies for s in case.samples[(c, "wrapper")])
    return {
        "cases": cases,
        "concurrencies": concurrencies,
        "recorder": recorder.stats(),
        "rows": expected_rows,
        "load": load,
    }


def median_of(samples: list[Sample], attribute: str) -> float:
    return statistics.median(getattr(s, attribute) for s in samples)


def count_rows(database_url: str) -> int:
    import sqlalchemy as sa

    from pulsegate.core.store.tables import api_usage_metrics

    engine = create_store_engine(database_url)
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(api_usage_metrics)).scalar_one()
    engine.dispose()
    return int(total)


def report(result: dict[str, Any], args: argparse.Namespace) -> tuple[list[str], list[str], bool]:
    """Markdown table lines, goal lines, all goals met."""
    cases: list[Case] = result["cases"]
    table = [
        "| provider | concurrency | client | calls/s | latency p50 ms | latency p95 ms | client CPU µs/call "
        "(min–max over rounds) | of which recorder thread | emulator CPU busy |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    goals = [
        "| goal | measured: median of same-round pairs (min–max) | ratio or difference of the medians | target "
        "| result |",
        "|---|---:|---:|---:|---|",
    ]
    all_met = True
    for case in cases:
        for concurrency in result["concurrencies"]:
            for variant in ("raw", "wrapper"):
                samples = case.samples[(concurrency, variant)]
                cpu = [s.cpu_us for s in samples]
                calls = sum(s.calls for s in samples)
                recorder = (
                    f"{sum(s.recorder_cpu_s for s in samples) / calls * 1e6:.0f} µs" if variant == "wrapper" else "—"
                )
                busy = sum(s.emulator_cpu_s for s in samples) / sum(s.wall_s for s in samples)
                name = "raw SDK" if variant == "raw" else "AIClient"
                table.append(
                    f"| {case.provider} | {concurrency} | {name} | {median_of(samples, 'per_s'):,.0f} | "
                    f"{median_of(samples, 'p50_ms'):.3f} | {median_of(samples, 'p95_ms'):.3f} | "
                    f"{statistics.median(cpu):.0f} ({min(cpu):.0f}–{max(cpu):.0f}) | {recorder} | {busy:.0%} |"
                )
            raw, wrapped = case.samples[(concurrency, "raw")], case.samples[(concurrency, "wrapper")]
            raw_cpu, wrap_cpu = median_of(raw, "cpu_us"), median_of(wrapped, "cpu_us")
            ratios = [w.cpu_us / r.cpu_us for w, r in zip(wrapped, raw, strict=True)]
            paired = statistics.median(ratios)
            met = paired <= CPU_RATIO_GOAL
            all_met &= met
            goals.append(
                f"| {case.provider} CPU/call, concurrency {concurrency}: AIClient ÷ raw | **{paired:.2f}×** "
                f"({min(ratios):.2f}–{max(ratios):.2f}) | {wrap_cpu / raw_cpu:.2f}× ({wrap_cpu:.0f} vs "
                f"{raw_cpu:.0f} µs) | ≤ {CPU_RATIO_GOAL:.2f}× | {'PASS' if met else 'MISS'} |"
            )
        raw, wrapped = case.samples[(1, "raw")], case.samples[(1, "wrapper")]
        differences = [w.p50_ms - r.p50_ms for w, r in zip(wrapped, raw, strict=True)]
        paired = statistics.median(differences)
        met = paired <= ADDED_LATENCY_GOAL_MS
        all_met &= met
        goals.append(
            f"| {case.provider} added latency, concurrency 1: AIClient p50 − raw p50 | **{paired:+.3f} ms** "
            f"({min(differences):+.3f} to {max(differences):+.3f}) | "
            f"{median_of(wrapped, 'p50_ms') - median_of(raw, 'p50_ms'):+.3f} ms | ≤ {ADDED_LATENCY_GOAL_MS} ms | "
            f"{'PASS' if met else 'MISS'} |"
        )
    load = result["load"]
    goals += [
        "",
        f"Other processes used {load['others']:.0%} of one CPU on average during the run (hypervisor steal "
        f"{load['steal']:.0%}); much above 10 % they share the client's CPU and widen the spread between rounds.",
    ]
    return table, goals, all_met


# -- profiling ------------------------------------------------------------------------------------------------------
def own_code(filename: str) -> bool:
    """Pulsegate's call path, under either of its paths (the folder, or the installed package's link to it)."""
    return filename.startswith((str(ROOT / "core"), str(ROOT / "src" / "pulsegate" / "core")))


def short(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    path = Path(filename)
    with contextlib.suppress(ValueError):
        path = path.relative_to(ROOT / "src") if path.is_relative_to(ROOT / "src") else path.relative_to(ROOT)
    if "site-packages" in path.parts:
        path = Path(*path.parts[path.parts.index("site-packages") + 1 :])
    return f"{path}:{line} {name}" if line else name


async def profile(args: argparse.Namespace, url: str, database_url: str, out_dir: Path) -> None:
    """cProfile (main thread only) of raw vs AIClient at each concurrency; per-call µs include profiler overhead."""
    client = build_wrapper(url, database_url)
    meters = Meters("/proc/self/stat", None)
    recorder = client.recorder
    for case in build_cases(url, client, with_openai=not args.no_openai):
        await profile_case(args, case, recorder, meters, out_dir)
    await client.aclose()


async def profile_case(args: argparse.Namespace, case: Case, recorder: Any, meters: Meters, out_dir: Path) -> None:
    for concurrency, calls in ((1, args.calls_c1 * 2), (args.concurrency, args.calls_c32)):
        per_call: dict[str, dict[tuple[str, int, str], tuple[float, float, int]]] = {}
        totals: dict[str, float] = {}
        for variant, call in (("raw", case.raw), ("wrapper", case.wrapper)):
            flush = recorder.flush if variant == "wrapper" else None
            await run_batch(call, max(args.warmup, concurrency), concurrency, meters, flush)
            gc.collect()
            profiler = cProfile.Profile()
            profiler.enable()
            sample = await run_batch(call, calls, concurrency, meters, None, collect=False)
            profiler.disable()
            if flush:
                flush()
            path = out_dir / f"{case.provider}_{variant}_c{concurrency}.prof"
            profiler.dump_stats(path)
            stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
            per_call[variant] = {k: (v[2] / calls * 1e6, v[3] / calls * 1e6, v[1]) for k, v in stats.items()}
            totals[variant] = sample.cpu_us
        wrapper = per_call["wrapper"]
        print(
            f"\n=== profile, {case.provider}, concurrency {concurrency}, {calls} calls each (profiled CPU µs/call: "
            f"raw {totals['raw']:.0f}, AIClient {totals['wrapper']:.0f}; files in {out_dir}) ==="
        )
        print("\nPulsegate code by cumulative time (µs per call):")
        print(f"{'cum':>8} {'self':>8} {'calls/call':>10}  function")
        mine = [(k, v) for k, v in wrapper.items() if own_code(k[0])]
        for key, (tt, ct, nc) in sorted(mine, key=lambda kv: -kv[1][1])[: args.profile_top]:
            print(f"{ct:8.1f} {tt:8.1f} {nc / calls:10.2f}  {short(key)}")
        print("\nPulsegate code by self time (µs per call):")
        for key, (tt, ct, nc) in sorted(mine, key=lambda kv: -kv[1][0])[: args.profile_top]:
            print(f"{ct:8.1f} {tt:8.1f} {nc / calls:10.2f}  {short(key)}")
        print("\nAll code, self time AIClient − raw (µs per call; + = extra work in the wrapper path):")
        keys = set(wrapper) | set(per_call["raw"])
        diff = [(k, wrapper.get(k, (0.0, 0.0, 0))[0] - per_call["raw"].get(k, (0.0, 0.0, 0))[0]) for k in keys]
        for key, delta in sorted(diff, key=lambda kv: -abs(kv[1]))[: args.profile_top]:
            print(f"{delta:+8.1f}  {short(key)}")


# -- results file ---------------------------------------------------------------------------------------------------
def sdk_machine() -> str:
    return machine(f"anthropic {anthropic.__version__}", f"openai {openai.__version__}")


# -- main -----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds per case (default 21)")
    parser.add_argument("--calls-c1", type=int, default=150, help="calls per batch at concurrency 1 (default 150)")
    parser.add_argument("--calls-c32", type=int, default=600, help="calls per batch at high concurrency (600)")
    parser.add_argument("--concurrency", type=int, default=32, help="the high concurrency (default 32)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up calls per client and concurrency (200)")
    parser.add_argument("--no-openai", action="store_true", help="only the Anthropic case")
    parser.add_argument("--write-results", action="store_true", help="rewrite its section of benchmarks/RESULTS.md")
    parser.add_argument("--profile", action="store_true", help="after the timed run, cProfile raw vs AIClient")
    parser.add_argument("--profile-only", action="store_true", help="only the cProfile part")
    parser.add_argument("--profile-top", type=int, default=25, help="rows per profile table (default 25)")
    parser.add_argument("--profile-dir", type=Path, default=None, help="keep the .prof files here")
    args = parser.parse_args(argv)

    pin = can_pin()
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})
    else:
        print("warning: fewer than 2 CPUs usable; client and emulator are not pinned apart", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="pulsegate-bench-") as tmp:
        scenario = Path(tmp) / "scenario.json"
        scenario.write_text(json.dumps(SCENARIO))
        database_url = f"sqlite:///{tmp}/attempts.db"
        port = free_port()
        emulator = start_emulator(port, pin=pin, scenario_file=scenario)
        url = f"http://127.0.0.1:{port}"
        try:
            status = 0
            if not args.profile_only:
                print(
                    f"emulator pid {emulator.pid} on :{port}; pinned: {pin}; {sdk_machine()}",
                    flush=True,
                )
                started = time.perf_counter()
                result = asyncio.run(measure(args, url, database_url, emulator.pid))
                elapsed = time.perf_counter() - started
                table, goals, all_met = report(result, args)
                rows = count_rows(database_url)
                expected = result["rows"]
                stats = result["recorder"]
                print("\n" + "\n".join(table) + "\n\n" + "\n".join(goals))
                print(f"\nattempt rows in SQLite: {rows} (timed wrapper calls {expected} + warm-up); recorder {stats}")
                print(f"timed part took {elapsed:.0f} s")
                if rows < expected or stats["dropped"] or stats["write_failures"]:
                    print("error: the recorder did not write every attempt", file=sys.stderr)
                    status = 1
                status = status or (0 if all_met else 3)
                if args.write_results:
                    write_results(args, argv, table, goals, elapsed)
            if args.profile or args.profile_only:
                out_dir = args.profile_dir or Path(tmp) / "profiles"
                out_dir.mkdir(parents=True, exist_ok=True)
                asyncio.run(profile(args, url, f"sqlite:///{tmp}/profile.db", out_dir))
            return status
        finally:
            stop(emulator, 10)


def write_results(
    args: argparse.Namespace, argv: list[str] | None, table: list[str], goals: list[str], elapsed: float
) -> None:
    shown = " ".join(sys.argv[1:] if argv is None else argv)
    body = f"""## Call overhead: raw SDK vs AIClient

Command (run {time.strftime("%Y-%m-%d")}, timed part {elapsed:.0f} s):
`.venv/bin/python benchmarks/overhead.py {shown}`

Machine: {sdk_machine()}.

The emulator runs in its own process (`python -m pulsegate.emulator`, default scenario with budgets raised so nothing is
rate-limited), pinned to CPU {EMULATOR_CPU}; the benchmark process is pinned to CPU {CLIENT_CPU}. Raw clients (one key
each): `anthropic.AsyncAnthropic(max_retries=0).messages.create` and
`openai.AsyncOpenAI(max_retries=0).chat.completions.create`. AIClient: 3 keys per provider, `*_RPM=10000000`, breaker
on (defaults), recording ON to a SQLite file through `SqlRecorder`. Prompt: one short user message,
`max_tokens={MAX_TOKENS}`. {args.rounds} interleaved rounds (order alternating raw/AIClient and AIClient/raw) of
{args.calls_c1} calls at concurrency 1 and {args.calls_c32} calls at concurrency {args.concurrency}, after
{args.warmup} warm-up calls per client and concurrency; the table's figures are medians over rounds.

The goals are judged on same-round pairs — each round's AIClient ÷ raw CPU ratio (or p50 difference), both batches
measured back to back, then the median over rounds — because this shared VM's speed drifts by up to ~2× between
batches (see the min–max CPU column), which a ratio of medians taken from different moments does not cancel; the ratio
of the medians is shown next to it.

Client CPU is `getrusage(RUSAGE_SELF)` user+sys of the whole benchmark process (so AIClient's figure includes the
recorder's writer thread and the flush of each batch's rows); "of which recorder thread" is that thread's share, from
`/proc/self/task/<tid>/stat` (10 ms ticks, summed over rounds). "Emulator CPU busy" near 100 % would mean the
emulator, not the client, limited calls/s.

{chr(10).join(table)}

{chr(10).join(goals)}
"""
    print(f"wrote {write_section(SECTION, body)}")


if __name__ == "__main__":
    sys.exit(main())
