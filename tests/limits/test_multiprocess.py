"""Four real processes, each with its own RedisRateLimiter, flood one limit: exact across processes — on a single
Redis and on a Redis Cluster (``any_redis_url``).

Over every interval T between two admissions the admitted total stays ≤ L + L × T / period (capacity L: zero
over-admission), and the processes together use ≥ 95 % of what the limit allowed from the flood's start to its last
admission. Admission instants are only known to lie between the wall times just before and after each call, so every
interval is widened by the largest such uncertainty (reported in the failure message).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from pulsegate.core.redis_cluster import detect_blocking
from tests.limits.conftest import delete_prefix, unique_prefix
from tests.support.processes import ROOT, clean_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROCESSES = 4
PERIOD_S = 2.0
FLOOD_S = 6.0


def run_flood(
    redis_url: str,
    limit: float,
    costs: list[float],
    *,
    per_process: list[list[float]] | None = None,
    queue: bool = False,
    duration_s: float = FLOOD_S,
) -> tuple[list[tuple[float, float]], float, float]:
    """Admissions as (midpoint, cost), sorted; the largest half-width of a call; and the flood's start.
    ``per_process`` gives each process its own costs; ``queue`` sends them through an admission queue."""
    prefix = unique_prefix()
    expected_mode = detect_blocking(redis_url, 2.0)
    start = time.time() + 1.5
    config = {
        "url": redis_url,
        "prefix": prefix,
        "key": "anthropic:shared",
        "limit": limit,
        "period_s": PERIOD_S,
        "costs": costs,
        "start": start,
        "duration_s": duration_s,
        "queue": queue,
    }
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.limits.flood_worker",
                json.dumps({**config, "costs": per_process[index] if per_process else costs}),
            ],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    try:
        outputs = [worker.communicate(timeout=duration_s + 30) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        delete_prefix(redis_url, prefix)
    admitted: list[tuple[float, float]] = []
    half_width = 0.0
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        report = json.loads(out.strip().splitlines()[-1])
        assert not report["degraded"], "a worker fell back to local limits"
        assert report["mode"] == expected_mode, f"a worker took the server for {report['mode']}"
        assert report["admitted"], "a worker was starved completely"
        for before, after, cost in report["admitted"]:
            admitted.append(((before + after) / 2, cost))
            half_width = max(half_width, (after - before) / 2)
    admitted.sort()
    return admitted, half_width, start


def check_bounds(admitted: list[tuple[float, float]], half_width: float, start: float, limit: float) -> None:
    tightest = float("inf")
    for i, (first, _) in enumerate(admitted):
        total = 0.0
        for last, cost in admitted[i:]:
            total += cost
            bound = limit + limit * (last - first + 2 * half_width) / PERIOD_S
            tightest = min(tightest, bound - total)
            assert total <= bound + 1e-6, (
                f"over-admitted: {total} units in {last - first:.4f} s (bound {bound:.3f}, ±{half_width * 1e3:.2f} ms)"
            )
    # what the limit allowed from the flood's start to its last admission (a large request that no longer fits
    # before the flood ends is not an unused allowance)
    allowed = limit + limit * (admitted[-1][0] + half_width - start) / PERIOD_S
    used = sum(cost for _, cost in admitted)
    assert used >= 0.95 * allowed, f"only {used} of {allowed} units used ({used / allowed:.1%})"
    print(
        f"admitted {used:g} of {allowed:g} allowed ({used / allowed:.1%}); "
        f"tightest margin {tightest:.3f} units, ±{half_width * 1e3:.2f} ms"
    )


def test_four_processes_flooding_one_request_limit_admit_exactly_the_limit(any_redis_url: str) -> None:
    limit = 40.0
    admitted, half_width, start = run_flood(any_redis_url, limit, [1.0])
    check_bounds(admitted, half_width, start, limit)


def test_four_processes_flooding_one_token_limit_with_mixed_sizes(any_redis_url: str) -> None:
    limit = 4_000.0
    admitted, half_width, start = run_flood(any_redis_url, limit, [50.0, 400.0, 50.0, 1_500.0, 120.0])
    check_bounds(admitted, half_width, start, limit)
    assert sum(1 for _, cost in admitted if cost == 1_500.0) >= 3, "the large requests were starved"


def test_a_process_sending_only_large_requests_is_not_starved_by_three_sending_small_ones(redis_url: str) -> None:
    """Through admission queues, as AIClient sends: the large requests' process is overtaken by the others'
    small ones until it reserves (charged into debt, sent when covered), so it gets a fair part of the limit."""
    limit = 4_000.0
    small, large = [50.0], [1_500.0]
    flood_s = 9.0
    admitted, _, _ = run_flood(
        redis_url, limit, small, per_process=[large, small, small, small], queue=True, duration_s=flood_s
    )
    large_units = sum(cost for _, cost in admitted if cost == 1_500.0)
    total = sum(cost for _, cost in admitted)
    # starved (no reservation), it gets the first one only, while the bucket is full at the start
    assert large_units >= 3 * 1_500.0, f"the large requests were starved: {large_units:g} of {total:g} units"
    assert total <= limit + limit * flood_s / PERIOD_S + 1_500.0  # never over the limit (± one request in flight)
    print(f"large requests: {large_units:g} of {total:g} units ({large_units / total:.0%})")
