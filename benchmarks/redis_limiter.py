"""Per-acquire cost of the Redis limiter on loopback (goal: ≤ 150 µs round trip) next to the memory limiter (≤ 10 µs),
and the per-attempt key/breaker exchange of the shared state.

Limits so high that nothing ever waits: pure overhead. The Redis limiter runs as in production — time from Redis
``TIME`` inside the Lua script, one ``EVALSHA`` per call — on a redis-py asyncio connection (``core/redis_link.py``);
a ``PING`` on a bare connection is the floor any Redis round trip pays, and a ``PING`` through redis-py's client shows
what its command machinery would add. Best of 7 runs (memory: 50 000 calls, Redis: 5 000).
Run: ``.venv/bin/python benchmarks/redis_limiter.py [--redis-url redis://127.0.0.1:6379/15] [--write-results]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import hiredis
import redis
from results import machine, write_section

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.limits import Demand, LimitSpec, MemoryRateLimiter, RedisRateLimiter
from pulsegate.core.limits.redis import _DEMANDS
from pulsegate.core.provider import Provider
from pulsegate.core.shared_state.redis import RedisSharedState

RUNS = 7
HUGE = LimitSpec(limit=1e12, period_s=60.0)
ONE: Sequence[Demand] = [Demand("anthropic:rpm", HUGE)]
THREE: Sequence[Demand] = [
    Demand("anthropic:rpm", HUGE),
    Demand("anthropic:tpm", HUGE, 1_500),
    Demand("anthropic:key:62af8704764f:rpm", HUGE),
]


def evalsha_stats(client: redis.Redis) -> tuple[int, int]:
    """(calls, µs) of every EVALSHA the server has run (other clients' too: run on a quiet Redis)."""
    stat = client.info("commandstats").get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(stat["calls"]), int(stat["usec"])


async def best_us_per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(min(calls, 500)):  # warm up: connection, script cache
        await call()
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for _ in range(calls):
            await call()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


async def main(url: str, write: bool) -> None:
    load = os.getloadavg()[0]
    prefix = f"pulsegate:limit:bench-{uuid.uuid4().hex[:8]}:"
    memory = MemoryRateLimiter()
    shared = RedisRateLimiter(url, prefix=prefix, timeout_s=1.0)  # a loaded VM must not degrade the run
    client = shared.link.client()  # the link's redis-py client, whose command machinery scripts skip
    bare = client.connection_pool.make_connection()
    ping = bare.pack_command("PING")

    async def bare_ping() -> object:
        await bare.send_packed_command(ping, check_health=False)
        return await bare.read_response()

    state = RedisSharedState(shared.link, prefix=prefix)
    keys = [ApiKey(Provider.ANTHROPIC, f"Key {n}", "BENCH", f"bench-key-{n}-{uuid.uuid4().hex}") for n in range(3)]
    pool = KeyPool(Provider.ANTHROPIC, keys)
    state.attach("anthropic", pool, CircuitBreaker("anthropic"))

    async def exchange_after_a_success() -> None:
        pool.state(keys[0]).record_success(pool.clock.monotonic())  # one outcome to tell, as after every attempt
        await state.sync("anthropic")

    one_names, one_args = shared._demand_args(ONE, "acquire")

    async def acquire_through_the_client() -> object:  # the path scripts took before core/redis_link.py skipped it
        return await client.execute_command("EVALSHA", _DEMANDS.sha, len(one_names), *one_names, *one_args)

    rows: list[tuple[str, Callable[[], Awaitable[object]], int, float | None]] = [
        ("memory: try_acquire, 1 demand", lambda: memory.try_acquire(ONE), 50_000, 10),
        ("memory: try_acquire, 3 demands (rpm + tpm + key rpm)", lambda: memory.try_acquire(THREE), 50_000, 10),
        ("Redis: PING on a bare connection (floor of any round trip)", bare_ping, 5_000, None),
        ("Redis: PING through redis-py's client (pool, retry, hooks)", lambda: client.ping(), 5_000, None),
        ("Redis: try_acquire's EVALSHA via redis-py's client (before)", acquire_through_the_client, 5_000, None),
        ("Redis: try_acquire, 1 demand", lambda: shared.try_acquire(ONE), 5_000, 150),
        ("Redis: try_acquire, 3 demands (rpm + tpm + key rpm)", lambda: shared.try_acquire(THREE), 5_000, 150),
        ("Redis: wait_time (peek), 3 demands", lambda: shared.wait_time(THREE), 5_000, 150),
        ("Redis: refund, 1 key", lambda: shared.refund("anthropic:tpm", HUGE, 1), 5_000, 150),
        # no goal in the issue: one more round trip per attempt, held to twice the limiter's goal
        ("Redis: key/breaker exchange before a key is chosen, 3 keys", exchange_after_a_success, 5_000, 300),
    ]
    table = ["| path | µs per call (best of 7) | goal |", "|---|---:|---:|"]
    stats = redis.Redis.from_url(url)
    before = evalsha_stats(stats)
    try:
        for label, call, calls, goal in rows:
            us = await best_us_per_call(call, calls)
            goal_text = "none (reference)" if goal is None else f"≤ {goal:g} µs: {'PASS' if us <= goal else 'MISS'}"
            print(f"{label:<60} {us:8.2f} µs   goal {goal_text}")
            table.append(f"| {label} | {us:.2f} | {goal_text} |")
        assert not shared.degraded, "the Redis limiter fell back to local limits during the benchmark"
        after = evalsha_stats(stats)
        server_us = (after[1] - before[1]) / max(1, after[0] - before[0])
        print(f"server side: {server_us:.2f} µs per EVALSHA (Lua script incl. TIME, GETs, SETs; INFO commandstats)")
    finally:
        await bare.disconnect()
        await shared.aclose()
        sync = redis.Redis.from_url(url)
        keys = list(sync.scan_iter(match=prefix + "*"))
        if keys:
            sync.delete(*keys)
        info = sync.info("server")
        sync.close()
        stats.close()
    if write:
        clients = f"redis-py {redis.__version__}, hiredis {hiredis.__version__}"
        body = (
            "## Limiter: per-acquire cost, Redis backend next to memory; the shared key/breaker exchange\n\n"
            f"Command (run {time.strftime('%Y-%m-%d')}): `.venv/bin/python benchmarks/redis_limiter.py --write-results`"
            f"\n\nMachine: {machine(clients)}; Redis {info.get('redis_version')} on "
            f"loopback ({url.rsplit('@', 1)[-1]}); load average before the run {load:.2f} (a shared 2-CPU VM: the "
            "Redis rows move by ±20 µs from run to run).\n\n"
            "Limits so high that nothing waits. Redis rows: one `EVALSHA` of the limiter's Lua script per call, time "
            "from Redis `TIME`, on a redis-py asyncio connection taken from the link's idle stack (calls in sequence, "
            "so one connection); `PING` on a bare connection is the floor any round trip pays on this machine, and "
            "`PING` through redis-py's client shows the ~30 µs its pool, retry wrapper and observability hooks add "
            "— the reason scripts skip them (commands are packed by hiredis); the row marked *before* is a one-demand "
            "acquire's script sent the way it was until 2026-11-28, through the client. Inside Redis the script "
            "itself took "
            f"{server_us:.1f} µs per call on average (`INFO commandstats`, all Redis rows); the rest is the "
            "loopback round trip and reply parsing. The last row is the one extra round trip `REDIS_URL` adds to "
            "every attempt for shared key health and breaker state (`core/shared_state/redis.py`: tell one outcome, "
            "read three keys' records and the breaker).\n\n" + "\n".join(table)
        )
        print(f"wrote {write_section('limiter-redis', body)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("PULSEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--write-results", action="store_true")
    options = parser.parse_args()
    asyncio.run(main(options.redis_url, options.write_results))
