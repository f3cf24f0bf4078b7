"""The demo's traffic generator: an application's worth of calls through :class:`~pulsegate.core.client.AIClient`.

A seeded mix of providers, priorities, users and features; streaming and whole responses; async and sync calls;
Anthropic calls mostly with ``fallback_to_openai`` so the 529 storm shows fallbacks. It keeps a tally of what it
made and writes it (JSON) every few seconds and once more after ``aclose()`` has flushed every attempt row, so a
test can check the store holds exactly the calls it reports. SIGTERM / SIGINT: stop starting calls, let the ones
in flight finish, close the client, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pulsegate.core.client import AIClient
from pulsegate.core.errors import CallError
from pulsegate.core.request import CallOptions, ModelConfig, Priority
from pulsegate.core.response import AIResponse

log = logging.getLogger("pulsegate.demo.traffic")

DEFAULT_RATE = 3.0  # calls per second on average (Poisson arrivals)
MAX_IN_FLIGHT = 32
CALL_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 20.0
STATS_EVERY_S = 2.0
#: The demo's own breaker timings: it opens within seconds of the storm and closes soon after it ends.
DEMO_BREAKER = {"window_s": 20.0, "min_calls": 8, "failure_rate": 0.5, "open_s": 2.0, "max_open_s": 6.0}

#: (priority, weight, feature): the original spec's conventions — user-facing first, background last.
PRIORITIES = (
    (Priority.USER_FACING_HIGH, 0.20, "chat"),
    (Priority.USER_FACING, 0.40, "search"),
    (Priority.ADMIN, 0.15, "admin-report"),
    (Priority.BACKGROUND, 0.25, "batch-summaries"),
)
USERS = tuple(f"user-{i:02d}" for i in range(1, 13))
ANTHROPIC_MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5")
OPENAI_MODELS = ("gpt-4.1-mini",)
PROMPTS = (
    "Summarise the latest support ticket in two sentences",
    "Suggest a title for this pull request",
    "Translate the release notes into French",
    "Classify this customer email by urgency",
    "Draft a friendly reminder about the invoice",
)


@dataclass(frozen=True, slots=True)
class TrafficMix:
    """Shares of the mix (each in [0, 1])."""

    anthropic: float = 0.8  # the rest go to OpenAI directly
    fallback: float = 0.85  # of Anthropic calls: allowed to fall back to OpenAI
    streaming: float = 0.3
    sync: float = 0.2  # of non-streaming calls: through generate_response_sync from a thread


@dataclass(frozen=True, slots=True)
class CallPlan:
    provider: str
    model: str
    mode: str  # "async" | "sync" | "stream"
    priority: int
    feature: str
    user_id: str | None
    fallback: bool
    prompt: str

    def config(self) -> ModelConfig:
        return ModelConfig(model=self.model, provider=self.provider, max_tokens=64)

    def options(self) -> CallOptions:
        return CallOptions(
            fallback_to_openai=self.fallback,
            priority=self.priority,
            user_id=self.user_id,
            feature=self.feature,
            timeout_s=CALL_TIMEOUT_S,
        )


def plan_call(rng: random.Random, mix: TrafficMix = TrafficMix()) -> CallPlan:
    """One call of the mix, drawn from ``rng`` (seeded: the same seed gives the same traffic)."""
    anthropic = rng.random() < mix.anthropic
    provider = "anthropic" if anthropic else "openai"
    model = rng.choice(ANTHROPIC_MODELS if anthropic else OPENAI_MODELS)
    mode = "stream" if rng.random() < mix.streaming else ("sync" if rng.random() < mix.sync else "async")
    priority, feature = _weighted(rng)
    user = rng.choice(USERS) if priority >= Priority.USER_FACING else None
    fallback = anthropic and rng.random() < mix.fallback
    return CallPlan(provider, model, mode, priority, feature, user, fallback, rng.choice(PROMPTS))


def _weighted(rng: random.Random) -> tuple[int, str]:
    point, total = rng.random(), 0.0
    for priority, weight, feature in PRIORITIES:
        total += weight
        if point < total:
            return priority, feature
    return PRIORITIES[-1][0], PRIORITIES[-1][2]


@dataclass(slots=True)
class TrafficStats:
    """What the generator made. ``calls`` counts every call started; each ends in ``succeeded`` or ``failed``."""

    calls: int = 0
    succeeded: int = 0
    failed: int = 0
    fell_back: int = 0
    modes: Counter[str] = field(default_factory=Counter)
    answered_by: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    closed: bool = False  # True once aclose() flushed the recorder: the store holds every row

    def record(self, plan: CallPlan, response: AIResponse | None, error: BaseException | None) -> None:
        if response is not None:
            self.succeeded += 1
            self.answered_by[response.provider] += 1
            self.fell_back += int(response.fell_back)
        else:
            self.failed += 1
            name = getattr(error, "error_class", None) or type(error).__name__
            self.errors[str(name)] += 1

    def to_json(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in values.items()}

    def write(self, path: Path | None) -> None:
        if path is None:
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        os.replace(tmp, path)


async def _one(client: AIClient, plan: CallPlan) -> AIResponse:
    messages = [{"role": "user", "content": plan.prompt}]
    if plan.mode == "stream":
        async with client.stream_response(plan.config(), messages, None, plan.options()) as stream:
            async for _delta in stream:
                pass
        assert stream.response is not None
        return stream.response
    if plan.mode == "sync":
        return await asyncio.to_thread(client.generate_response_sync, plan.config(), messages, None, plan.options())
    return await client.generate_response(plan.config(), messages, None, plan.options())


async def run_traffic(
    client: AIClient,
    stop: asyncio.Event,
    stats: TrafficStats,
    *,
    rate: float = DEFAULT_RATE,
    rng: random.Random | None = None,
    mix: TrafficMix = TrafficMix(),
    stats_file: Path | None = None,
) -> None:
    """Start calls at ``rate`` per second until ``stop`` is set, then wait for the ones in flight."""
    rng = rng or random.Random()
    in_flight: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    last_write = time.monotonic()

    async def call(plan: CallPlan) -> None:
        try:
            response = await _one(client, plan)
        except CallError as exc:
            stats.record(plan, None, exc)
        except Exception as exc:  # the demo must keep going; the tally says what broke
            log.warning("call failed unexpectedly: %r", exc)
            stats.record(plan, None, exc)
        else:
            stats.record(plan, response, None)
        finally:
            slots.release()

    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=rng.expovariate(rate))
            break
        except TimeoutError:
            pass
        await slots.acquire()
        plan = plan_call(rng, mix)
        if stats.calls == 0:  # the first call binds the client to this loop; a sync call first would bind it to
            plan = replace(plan, mode="async")  # a background loop, and streams here would then be refused
        stats.calls += 1
        stats.modes[plan.mode] += 1
        task = asyncio.create_task(call(plan))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        if time.monotonic() - last_write >= STATS_EVERY_S:
            stats.write(stats_file)
            last_write = time.monotonic()
    if in_flight:
        await asyncio.wait(in_flight, timeout=DRAIN_TIMEOUT_S)


async def _main(rate: float, seed: int | None, stats_file: Path | None) -> TrafficStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stats = TrafficStats()
    client = AIClient.from_env(breaker=DEMO_BREAKER)
    log.info("traffic generator started: about %.1f calls/s", rate)
    try:
        await run_traffic(client, stop, stats, rate=rate, rng=random.Random(seed), stats_file=stats_file)
    finally:
        await client.aclose()  # flushes the recorder: every attempt row is in the store after this
        stats.closed = True
        stats.write(stats_file)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pulsegate.jobs.cli.demo.traffic``: drive AIClient (settings from the environment) until SIGTERM /
    SIGINT."""
    parser = argparse.ArgumentParser(prog="pulsegate-demo-traffic", description=main.__doc__)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="calls per second (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the traffic mix")
    parser.add_argument("--stats-file", type=Path, default=None, help="write the tally here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("httpx2", "httpx", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    stats = asyncio.run(_main(args.rate, args.seed, args.stats_file))
    log.info(
        "traffic generator stopped: %d calls (%d ok, %d failed, %d fell back); rows flushed",
        stats.calls,
        stats.succeeded,
        stats.failed,
        stats.fell_back,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
