"""The database goes away while ``AIClient`` drives calls against the emulator at concurrency, then comes back
(issue 10, Faults). On PostgreSQL a TCP proxy in front of the server resets every connection and refuses new ones;
on SQLite another connection holds the write lock.

Each round has three phases — baseline, outage, recovery (the spool replays while calls go on) — each the same number
of calls at the same concurrency: afterwards every attempt the emulator answered has exactly one row (counted by attempt
id and by call id against the calls made), the rollups equal the raw aggregates, and the calls' p99 latency during
the outage stays within 1.2× the baseline's: the recorder never makes a call wait for the database. The client's
heartbeat writes to the same database throughout (it fails during the outage, off the event loop).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks.support.tcp_proxy import TcpProxy
from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.recording import SqlRecorder
from pulsegate.core.store import create_store_engine
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import settings_for, total_requests
from tests.recording.support import assert_rollups_match_raw, hour_ago, random_attempt
from tests.recording.test_durability import cuttable

pytestmark = pytest.mark.slow

SONNET = ModelConfig(provider="anthropic", model="claude-sonnet-4-6", max_tokens=16)
MESSAGES = [{"role": "user", "content": "hi"}]
CALLS_PER_PHASE = 300
WARM_UP = 100
#: p99 on a shared 2-CPU machine is at the mercy of its neighbours: a round whose outage p99 is over the bound is
#: measured again, up to ROUNDS rounds (a recorder that made calls wait would fail every round).
ROUNDS = 3
CONCURRENCY = 10
LATENCY_MS = 100


def scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(sql)).scalar_one())


async def run_phase(client: AIClient, calls: int) -> tuple[list[float], list[str]]:
    """``calls`` calls, ``CONCURRENCY`` at a time: (each call's seconds, each call's id)."""
    latencies: list[float] = []
    call_ids: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            started = time.perf_counter()
            response = await client.generate_response(
                SONNET, MESSAGES, options=CallOptions(user_id=f"user-{index % 7}", timeout_s=30)
            )
            latencies.append(time.perf_counter() - started)
            call_ids.append(response.call_id)

    await asyncio.gather(*(one(i) for i in range(calls)))
    return latencies, call_ids


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


async def test_cut_and_restore_the_database_under_load_loses_nothing_and_never_slows_a_call(
    store: sa.Engine, emu: EmulatorServer, tmp_path: Path
) -> None:
    # every answer takes 100 ms, so a call's latency is the provider's plus the wrapper's own work: a recorder that
    # waited for the database would show. (No injected failures: a retried call doubles its latency and would make
    # p99 measure where the retries fell, not the recorder; the chaos tests cover failed attempts' rows.)
    emu.set_scenario({"latency": {"kind": "fixed", "ms": LATENCY_MS}})
    with cuttable(store) as (engine, cut, restore):
        recorder = SqlRecorder(engine, batch_size=100, interval_s=0.05, retry_interval_s=0.1, spool_dir=tmp_path)
        client = AIClient(
            settings_for(emu, anthropic=3, openai=0, HEARTBEAT_INTERVAL_S="0.2"),
            recorder=recorder,
        )  # with its heartbeat on: it writes snapshots to the same database
        made: list[str] = []
        p99s: list[dict[str, float]] = []
        try:
            await run_phase(client, WARM_UP)  # warm up: connections to the emulator and the database
            assert recorder.flush(timeout_s=20)
            for _ in range(ROUNDS):
                baseline, ids = await run_phase(client, CALLS_PER_PHASE)
                made += ids
                assert recorder.flush(timeout_s=20)

                cut()
                outage, ids = await run_phase(client, CALLS_PER_PHASE)
                made += ids
                assert not recorder.flush(timeout_s=1)
                during = recorder.stats()
                assert during["write_failures"] > 0 and during["spool_pending"] > 0 and during["lost"] == 0

                restore()
                recovery, ids = await run_phase(client, CALLS_PER_PHASE)  # the spool replays meanwhile
                made += ids
                assert recorder.flush(timeout_s=20)
                p99s.append({"baseline": p99(baseline), "outage": p99(outage), "recovery": p99(recovery)})
                if p99s[-1]["outage"] <= 1.2 * p99s[-1]["baseline"]:
                    break
        finally:
            await client.aclose()
            recorder.close()
    stats = recorder.stats()
    assert (stats["lost"], stats["buffered"], stats["rejected"]) == (0, 0, 0), stats
    assert stats["replayed"] >= CALLS_PER_PHASE

    attempts = total_requests(emu)  # every attempt that reached the provider, warm-up included
    assert attempts == WARM_UP + len(made) == WARM_UP + 3 * CALLS_PER_PHASE * len(p99s)
    assert scalar(store, "SELECT COUNT(*) FROM api_usage_metrics") == attempts
    assert scalar(store, "SELECT COUNT(DISTINCT id) FROM api_usage_metrics") == attempts  # none twice
    assert scalar(store, "SELECT COUNT(DISTINCT call_id) FROM api_usage_metrics") == attempts
    with store.connect() as connection:
        stored = connection.execute(sa.text("SELECT call_id FROM api_usage_metrics WHERE is_final")).scalars().all()
    wanted = {uuid.UUID(value) for value in made}
    assert sorted(uuid.UUID(str(v)) for v in stored if uuid.UUID(str(v)) in wanted) == sorted(wanted)  # each once
    assert len(wanted) == len(made)
    assert scalar(store, "SELECT COUNT(*) FROM api_usage_metrics WHERE outcome = 'success'") == attempts
    assert scalar(store, "SELECT SUM(calls) FROM metric_rollups_1m") == attempts
    assert assert_rollups_match_raw(store) == attempts

    print([{phase: f"{value * 1e3:.1f} ms" for phase, value in round_.items()} for round_ in p99s])
    assert p99s[-1]["outage"] <= 1.2 * p99s[-1]["baseline"], p99s
    # Not asserted: while the spool replays, the recorder thread's CPU work competes for the GIL and p99 rose by
    # 25-50 % in runs on a busy 2-CPU machine (see the issue 10 report); the outage itself costs the calls nothing.


@pytest.mark.postgres
def test_a_hung_database_holds_no_row_hostage(
    postgres_store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database stops answering without closing anything (the proxy swallows every byte): the write in flight
    never returns. ``flush`` must say rows are still waiting, and ``close`` spools them — the next start replays
    them, each exactly once, though the stuck batch was spooled twice (by ``close``, and by its writer when the
    connection finally broke)."""
    store = create_store_engine(postgres_store_url)
    proxy = TcpProxy(store.url.host or "127.0.0.1", store.url.port or 5432)
    hung = create_store_engine(store.url.set(port=proxy.port).render_as_string(hide_password=False))
    rng = random.Random(4)
    try:
        with store.begin() as connection:
            connection.execute(sa.text("TRUNCATE api_usage_metrics, metric_rollups_1m, metric_rollups_10m, "
                                       "metric_rollups_1h, user_rollups_1h"))  # fmt: skip
        # rows are written only when flushed: the 120 recorded during the hang are one batch
        recorder = SqlRecorder(hung, batch_size=1000, interval_s=3600, spool_dir=tmp_path)
        for _ in range(100):
            recorder.record(random_attempt(rng, hour_ago()))
        assert recorder.flush()
        proxy.stalled = True
        for _ in range(120):
            recorder.record(random_attempt(rng, hour_ago()))
        assert not recorder.flush(timeout_s=1)  # the 120 rows are one batch, stuck in its write
        started = time.monotonic()
        recorder.close(timeout_s=1)
        assert time.monotonic() - started < 3
        stats = recorder.stats()
        assert (stats["written"], stats["spooled"], stats["lost"]) == (100, 120, 0), stats

        # the connection breaks at last: the hung write fails, its writer spools that batch again (same ids) and stops
        proxy.cut()
        recorder._thread.join(timeout=10)
        assert not recorder._thread.is_alive()
        proxy.stalled = False
        proxy.restore()

        fresh = create_store_engine(hung.url.render_as_string(hide_password=False))
        later = SqlRecorder(fresh, spool_dir=tmp_path)  # the next start (same URL) adopts both spool files
        try:
            assert later.stats()["spool_pending"] == 2 * 120  # rescued by close, and spooled again by the writer
            caplog.clear()
            assert later.flush()  # both adopted files in one go
            assert not [r for r in caplog.records if r.levelname == "ERROR"]
            assert (later.stats()["written"], later.stats()["duplicates_skipped"]) == (120, 120)
        finally:
            later.close()
            fresh.dispose()
        assert scalar(store, "SELECT COUNT(*) FROM api_usage_metrics") == 220
        assert scalar(store, "SELECT COUNT(DISTINCT id) FROM api_usage_metrics") == 220
        assert assert_rollups_match_raw(store) == 220
    finally:
        proxy.close()
        hung.dispose()
        store.dispose()
