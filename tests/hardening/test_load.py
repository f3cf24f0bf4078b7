"""Load (issue 10): 10,000 calls at concurrency 200 through ``AIClient`` against the emulator, with faults on.

The emulator runs in its own process (so this process's memory, sockets and file descriptors are the client's
alone) on the default zero-latency scenario plus fault rules that fire at random: Anthropic 529s (the calls allow
``fallback_to_openai``), 429s, 500s on both providers, and broken streams. Every attempt is recorded to a real
store through ``SqlRecorder``. Then:

- rows in the store equal the attempts made: the attempts every response and error reports (``AIResponse.attempts``,
  ``CallError.attempts``) are the rows that name a key, and the requests the emulator received (less any attempt
  that timed out or failed to connect on the client's side, which the emulator may not have seen); the other rows
  are refusals (an attempt that never reached the provider: breaker open, no usable key, deadline) — at most one
  per provider a call tried, each of a refusal class; every call has exactly one final row;
- every rollup row (1 m, 10 m, 1 h tiers) equals the aggregate of the raw rows, and the per-provider totals of
  calls, outcomes, tokens and cost in ``metric_rollups_1m`` equal the raw table's;
- RSS grows < 30 MiB between call 5,000 and call 10,000 (``VmRSS`` after ``gc.collect()``);
- no task leak (``asyncio.all_tasks()`` before the client and after it is closed) and no connection leak (this
  process's TCP sockets to the emulator, from ``/proc/self/net/tcp*`` matched to ``/proc/self/fd``, and its open
  file descriptors, before and after).

SQLite by default; ``PULSEGATE_LOAD_STORE=postgres`` runs it on PostgreSQL. ``PULSEGATE_LOAD_CALLS`` and
``PULSEGATE_LOAD_CONCURRENCY`` change the size (the issue's figures are the defaults). The measured figures are
printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallError, CallOptions, ModelConfig
from pulsegate.core.errors import ErrorClass
from pulsegate.core.recording import SqlRecorder
from pulsegate.core.settings import load_settings
from pulsegate.core.store.tables import api_usage_metrics, metric_rollups_1m
from tests.recording.support import assert_rollups_match_raw
from tests.support.processes import clean_env, free_port, wait_http

pytestmark = pytest.mark.slow

CALLS = int(os.environ.get("PULSEGATE_LOAD_CALLS", "10000"))
CONCURRENCY = int(os.environ.get("PULSEGATE_LOAD_CONCURRENCY", "200"))
MIDPOINT = CALLS // 2
RSS_GROWTH_LIMIT_MIB = 30.0
ROOT = Path(__file__).resolve().parents[2]

ANTHROPIC_KEYS = [f"sk-ant-load-{name}-{'x' * 24}" for name in ("primary", "backup1", "backup2")]
OPENAI_KEYS = [f"sk-load-openai-{name}-{'y' * 24}" for name in ("primary", "backup1")]

#: First matching rule whose rate draw succeeds fires (emulator/faults.py); the rest of the traffic succeeds.
FAULTS: list[dict[str, Any]] = [
    {"kind": "overloaded", "provider": "anthropic", "rate": 0.05},  # 529: retried once, then fallback to OpenAI
    {"kind": "rate_limit", "rate": 0.02, "retry_after": 1},  # 429: key cooled 1 s, the call moves to another key
    {"kind": "server_error", "rate": 0.03},  # 500: retried with backoff
    {"kind": "truncate_stream", "stream": True, "rate": 0.04, "after_events": 5},  # ends without a stop reason
    {"kind": "stream_error", "stream": True, "rate": 0.04},  # an error event mid-stream
]
SCENARIO = {"seed": 10, "faults": FAULTS}
#: Classes of a row written for an attempt that never reached the provider (pulsegate.core.call.rows.Rows.refusal).
REFUSAL_CLASSES = {
    ErrorClass.CIRCUIT_OPEN,
    ErrorClass.NO_USABLE_KEY,
    ErrorClass.DEADLINE_EXCEEDED,
    ErrorClass.QUEUE_TIMEOUT,
    ErrorClass.QUEUE_FULL,
    ErrorClass.RATE_LIMITED,  # "every key is cooling down past the deadline"
}
MESSAGES = [{"role": "user", "content": "Summarise the load test in one line"}]


# --- the emulator in its own process ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emulator:
    port: int
    pid: int

    def cpu_s(self) -> float:
        """User + system CPU seconds the emulator process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    scenario = tmp_path_factory.mktemp("load") / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pulsegate.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--scenario",
            str(scenario),
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/_emulator/health", timeout=30, process=process)  # type: ignore[arg-type]
        yield Emulator(port, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def emulator_stats(port: int) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=10) as response:
        return dict(json.loads(response.read()))


# --- what this process holds --------------------------------------------------------------------------------------


def rss_mib() -> float:
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS in /proc/self/status")


def socket_inodes() -> set[str]:
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed between listdir and readlink (the fd of listdir itself)
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # minus the fd listdir itself opened


def connections_to(port: int) -> int:
    """This process's TCP sockets whose remote end is ``port`` on loopback (any state)."""
    mine = socket_inodes()
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in mine:
                count += 1
    return count


# --- the load -----------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    done: int = 0
    attempts: int = 0
    successes: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # the first message of each failure class
    fell_back: int = 0
    streamed: int = 0
    call_ids: set[str] = field(default_factory=set)
    unexpected: list[str] = field(default_factory=list)
    rss_mid_mib: float = 0.0
    connections_mid: int = 0
    peak_connections: int = 0
    mid_at_s: float = 0.0


def plan(index: int) -> tuple[ModelConfig, CallOptions, bool]:
    """Six in ten Anthropic calls, two in ten Anthropic streams (all allowing fallback), one OpenAI call, one
    OpenAI stream."""
    slot = index % 10
    if slot < 8:
        config = ModelConfig(provider="anthropic", model="claude-sonnet-4-6", max_tokens=64)
        options = CallOptions(fallback_to_openai=True, user_id=f"user-{index % 50}", feature="load")
        return config, options, slot >= 6
    config = ModelConfig(provider="openai", model="gpt-4.1-mini", max_tokens=64)
    return config, CallOptions(user_id=f"user-{index % 50}", feature="load"), slot == 9


async def one_call(client: AIClient, index: int, tally: Tally) -> None:
    config, options, streamed = plan(index)
    try:
        if streamed:
            tally.streamed += 1
            async with client.stream_response(config, MESSAGES, options=options) as stream:
                async for _ in stream:
                    pass
            response = stream.response
            assert response is not None
        else:
            response = await client.generate_response(config, MESSAGES, options=options)
    except CallError as error:
        tally.attempts += error.attempts
        tally.failures[str(error.error_class)] += 1
        tally.examples.setdefault(f"{error.error_class}/{error.provider}", str(error)[:300])
    except Exception as exc:  # anything else escaping the client is a finding
        tally.unexpected.append(f"{type(exc).__name__}: {exc}")
    else:
        tally.attempts += response.attempts
        tally.successes += 1
        tally.fell_back += response.fell_back
        tally.call_ids.add(response.call_id)


async def run_load(client: AIClient, port: int, tally: Tally) -> float:
    next_index = 0
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal next_index
        while next_index < CALLS:
            index = next_index
            next_index += 1
            await one_call(client, index, tally)
            tally.done += 1
            if tally.done % 500 == 0:
                tally.peak_connections = max(tally.peak_connections, connections_to(port))
            if tally.done == MIDPOINT:  # nothing else runs on the loop while this measures
                tally.rss_mid_mib = rss_mib()
                tally.connections_mid = connections_to(port)
                tally.mid_at_s = time.perf_counter() - started

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


def store_counts(engine: sa.Engine) -> dict[str, Any]:
    t = api_usage_metrics.c
    with engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(api_usage_metrics)).scalar_one()
        keyed = connection.execute(sa.select(sa.func.count()).where(t.key_label.is_not(None))).scalar_one()
        finals = connection.execute(sa.select(sa.func.count()).where(t.is_final)).scalar_one()
        calls = connection.execute(sa.select(sa.func.count(sa.distinct(t.call_id)))).scalar_one()
        distinct_ids = connection.execute(sa.select(sa.func.count(sa.distinct(t.id)))).scalar_one()
        unanswered = connection.execute(  # attempts the emulator may never have seen (or counted)
            sa.select(sa.func.count()).where(
                t.key_label.is_not(None), t.error_class.in_([ErrorClass.TIMEOUT, ErrorClass.CONNECTION])
            )
        ).scalar_one()
        refusals = Counter(
            dict(
                connection.execute(
                    sa.select(t.error_class, sa.func.count()).where(t.key_label.is_(None)).group_by(t.error_class)
                ).all()
            )
        )
        refusals_per_call = connection.execute(
            sa.select(sa.func.max(sa.literal_column("n"))).select_from(
                sa.select(sa.func.count().label("n"))
                .where(t.key_label.is_(None))
                .group_by(t.call_id, t.provider)
                .subquery()
            )
        ).scalar_one()
    return {
        "rows": total,
        "keyed": keyed,
        "finals": finals,
        "calls": calls,
        "distinct_ids": distinct_ids,
        "timeouts_and_connection_errors": unanswered,
        "refusals": refusals,
        "max_refusals_per_call_and_provider": refusals_per_call or 0,
    }


def provider_totals(engine: sa.Engine) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """(raw, rollup) per provider: calls, successes, errors, input/output tokens, cost."""
    r, m = api_usage_metrics.c, metric_rollups_1m.c
    with engine.connect() as connection:
        raw = connection.execute(
            sa.select(
                r.provider,
                sa.func.count(),
                sa.func.sum(sa.case((r.outcome == "success", 1), else_=0)),
                sa.func.sum(sa.case((r.outcome == "error", 1), else_=0)),
                sa.func.sum(r.input_tokens),
                sa.func.sum(r.output_tokens),
                sa.func.sum(sa.func.coalesce(r.cost_usd, 0.0)),
            ).group_by(r.provider)
        ).all()
        rolled = connection.execute(
            sa.select(
                m.provider,
                sa.func.sum(m.calls),
                sa.func.sum(m.successes),
                sa.func.sum(m.errors),
                sa.func.sum(m.input_tokens),
                sa.func.sum(m.output_tokens),
                sa.func.sum(m.cost_usd),
            ).group_by(m.provider)
        ).all()
    return {row[0]: tuple(row[1:]) for row in raw}, {row[0]: tuple(row[1:]) for row in rolled}


@pytest.fixture
def load_store(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    kind = os.environ.get("PULSEGATE_LOAD_STORE", "sqlite")
    if kind == "postgres":
        request.applymarker(pytest.mark.postgres)
    from pulsegate.core.store.engine import create_store_engine
    from tests.conftest import _empty

    engine = create_store_engine(request.getfixturevalue(f"{kind}_store_url"))
    _empty(engine)
    yield engine
    engine.dispose()


async def test_ten_thousand_calls_at_concurrency_200_with_faults(
    emulator: Emulator, load_store: sa.Engine, tmp_path: Path
) -> None:
    port = emulator.port
    values = {
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "ANTHROPIC_RPM": "10000000",
        "OPENAI_RPM": "10000000",
    }
    for index, key in enumerate(ANTHROPIC_KEYS):
        values["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    for index, key in enumerate(OPENAI_KEYS):
        values["OPENAI_API_KEY" if index == 0 else f"OPENAI_API_KEY_{index + 1}"] = key
    settings = load_settings(values, env_file=None)

    load_store.dispose()
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    fds_before = open_fds()
    connections_before = connections_to(port)
    rss_before = rss_mib()

    recorder = SqlRecorder(load_store, spool_dir=tmp_path / "spool")
    client = AIClient(settings, recorder=recorder, heartbeat=False, max_queue=CONCURRENCY * 2)
    tally = Tally()
    cpu_before, emulator_cpu_before = time.process_time(), emulator.cpu_s()
    try:
        duration = await run_load(client, port, tally)
        cpu = {
            "this_process_s": round(time.process_time() - cpu_before, 1),  # the loop, the recorder's thread, the SDKs
            "emulator_s": round(emulator.cpu_s() - emulator_cpu_before, 1),
        }
        rss_end = rss_mib()
        connections_end = connections_to(port)
    finally:
        await client.aclose()
    stats = recorder.stats()
    del client, recorder
    await asyncio.sleep(0)  # let callbacks of closed transports run
    load_store.dispose()
    gc.collect()
    tasks_after = len(asyncio.all_tasks())
    fds_after = open_fds()
    connections_after = connections_to(port)

    counts = store_counts(load_store)
    received = emulator_stats(port)
    raw, rolled = provider_totals(load_store)
    figures = {
        "calls": CALLS,
        "concurrency": CONCURRENCY,
        "database": load_store.dialect.name,
        "duration_s": round(duration, 1),
        "calls_per_s": round(CALLS / duration),
        "load_average": os.getloadavg(),
        "cpu_during_load": cpu,
        "successes": tally.successes,
        "failures": dict(tally.failures),
        "failure_examples": tally.examples,
        "fell_back": tally.fell_back,
        "streamed": tally.streamed,
        "attempts": tally.attempts,
        "emulator_requests": received["total"],
        "emulator_faults": received["faults"],
        "store": counts,
        "recorder": stats,
        "rss_mib": {"before": round(rss_before, 1), "at_mid": round(tally.rss_mid_mib, 1), "end": round(rss_end, 1)},
        "rss_growth_mid_to_end_mib": round(rss_end - tally.rss_mid_mib, 2),
        "tasks": (tasks_before, tasks_after),
        "fds": (fds_before, fds_after),
        "connections": {
            "before": connections_before,
            "mid": tally.connections_mid,
            "peak_sampled": tally.peak_connections,
            "end_before_close": connections_end,
            "after_close": connections_after,
        },
    }
    print("\nload figures:", json.dumps(figures, default=str, indent=1))

    assert not tally.unexpected, tally.unexpected[:5]
    assert tally.done == CALLS
    assert tally.successes + sum(tally.failures.values()) == CALLS
    assert "unknown" not in tally.failures
    assert tally.fell_back > 0 and tally.streamed > 0 and received["faults"], "the faults must have fired"
    # Nothing lost, nothing duplicated.
    assert stats["lost"] == 0 and stats["buffered"] == 0 and stats["rejected"] == 0, stats
    assert counts["distinct_ids"] == counts["rows"]
    assert counts["calls"] == CALLS and counts["finals"] == CALLS
    # Rows equal the attempts made: every attempt sent is a row naming its key, and the emulator received them all
    # (but one that timed out or failed to connect on the client's side, which it may never have seen) ...
    assert counts["keyed"] == tally.attempts
    assert 0 <= tally.attempts - received["total"] <= counts["timeouts_and_connection_errors"]
    # ... and the rest are refusals (never sent), at most one per provider a call tried.
    assert set(counts["refusals"]) <= {str(c) for c in REFUSAL_CLASSES}, counts["refusals"]
    assert counts["rows"] == tally.attempts + sum(counts["refusals"].values())
    assert counts["max_refusals_per_call_and_provider"] <= 1
    # Rollups equal the raw aggregates: every tier, bucket and column; and the per-provider totals.
    assert assert_rollups_match_raw(load_store) == counts["rows"]
    assert set(raw) == set(rolled)
    for provider, raw_totals in raw.items():
        assert rolled[provider][:5] == raw_totals[:5], provider
        assert rolled[provider][5] == pytest.approx(raw_totals[5], rel=1e-9, abs=1e-9), provider
    # Memory, tasks, connections, descriptors.
    assert rss_end - tally.rss_mid_mib < RSS_GROWTH_LIMIT_MIB, figures["rss_mib"]
    assert tasks_after == tasks_before, figures["tasks"]
    assert connections_after == connections_before == 0, figures["connections"]
    assert fds_after == fds_before, figures["fds"]
