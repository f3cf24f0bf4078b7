"""One flooding process for the multi-process test: ``python -m tests.limits.flood_worker <json config>``.

From ``start`` (wall time) for ``duration_s`` it acquires ``[Demand(key, spec, cost)]`` on its own
:class:`RedisRateLimiter` as fast as the limiter lets it (sleeping exactly the wait it is told), cycling through
``costs``; it prints one JSON object: every admission as ``[before, after, cost]`` (wall time around the call), and
whether it degraded and which kind of Redis it found (single / cluster).
With ``"queue": true`` each request goes through an :class:`~pulsegate.core.admission.AdmissionQueue` instead (as
``AIClient`` does), one at a time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from pulsegate.core.admission import AdmissionQueue
from pulsegate.core.limits import Demand, LimitSpec, RedisRateLimiter


async def flood(config: dict[str, object]) -> dict[str, object]:
    spec = LimitSpec(limit=float(config["limit"]), period_s=float(config["period_s"]))  # type: ignore[arg-type]
    costs = [float(c) for c in config["costs"]]  # type: ignore[attr-defined]
    # a generous timeout: this measures exactness, and a loaded CI box must not push a worker onto local limits
    limiter = RedisRateLimiter(str(config["url"]), prefix=str(config["prefix"]), timeout_s=1.0)
    start, end = float(config["start"]), float(config["start"]) + float(config["duration_s"])  # type: ignore[arg-type]
    await limiter.wait_time([Demand("warm-up", spec)])  # connect and load the scripts before the start
    await asyncio.sleep(max(0.0, start - time.time()))
    admitted: list[list[float]] = []
    attempts = 0
    turn = 0
    queue = AdmissionQueue("flood", limiter) if config.get("queue") else None
    while time.time() < end:
        demand = Demand(str(config["key"]), spec, costs[turn % len(costs)])
        if queue is not None:
            before = time.time()
            try:
                await asyncio.wait_for(queue.admit([demand]), timeout=max(0.001, end - before))
            except TimeoutError:
                break
            admitted.append([before, time.time(), demand.cost])
            attempts += 1
            turn += 1
            continue
        before = time.time()
        wait = await limiter.try_acquire([demand])
        after = time.time()
        attempts += 1
        if wait == 0.0:
            admitted.append([before, after, demand.cost])
            turn += 1
        else:
            await asyncio.sleep(min(wait, max(0.0, end - after)))
    degraded, mode = limiter.degraded, limiter.link.mode
    await limiter.aclose()
    return {"admitted": admitted, "attempts": attempts, "degraded": degraded, "mode": mode}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(flood(json.loads(sys.argv[1])))))
