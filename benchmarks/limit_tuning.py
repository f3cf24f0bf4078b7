"""Self-tuning limits against real pushback and against none: what ``LIMIT_TUNING`` costs and what it protects.

1. **A server enforcing 60 requests a minute.** Not the emulator: a few dozen lines below (:class:`SixtyPerMinute`)
   speak enough of the Anthropic Messages API for the SDK, keep one token bucket (60, refilled at 1 per second),
   send the ``anthropic-ratelimit-requests-*`` headers and answer 429 with ``retry-after`` beyond the bucket. 100
   concurrent calls with ``ANTHROPIC_RPM=60``, once with ``LIMIT_TUNING=off`` and once on, in the same run. Goal: on
   finishes within 1.1× of off, with zero 429s in both (the client's own burst is not pushback).
2. **429s on one of three keys**, as the demo's ``key_429_pressure`` phase makes them (the emulator answers 80 % of
   Backup 1's requests with a 429, ``retry-after: 2``), at 90 calls a minute with ``ANTHROPIC_RPM=300``. Goal: the
   provider's effective limit stays at 300 throughout (sampled every 0.1 s) and every call is answered.

Run: ``.venv/bin/python benchmarks/limit_tuning.py [--calls 100] [--pressure-s 40] [--write-results]``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anthropic
from results import machine, write_section
from support import free_port, start_emulator

from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.settings import load_settings

HELLO = [{"role": "user", "content": "Hello"}]
HAIKU = ModelConfig(model="claude-haiku-4-5", max_tokens=16)
PATIENT = CallOptions(timeout_s=600)


class SixtyPerMinute(ThreadingHTTPServer):
    """``POST /v1/messages`` behind one token bucket of ``limit`` requests refilled over ``period_s`` seconds."""

    daemon_threads = True
    request_queue_size = 512  # 100 connections opened at once must not wait on the listen backlog

    def __init__(self, limit: int = 60, period_s: float = 60.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.limit, self.rate = float(limit), limit / period_s
        self.level, self.stamp = self.limit, time.monotonic()
        self.lock = threading.Lock()
        self.answered = {200: 0, 429: 0}
        self.ids = itertools.count(1)

    def take(self) -> tuple[bool, float, float]:
        """(admitted, tokens left, seconds until one more fits)."""
        with self.lock:
            now = time.monotonic()
            self.level = min(self.limit, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
            admitted = self.level >= 1.0
            if admitted:
                self.level -= 1.0
            self.answered[200 if admitted else 429] += 1
            return admitted, self.level, max(0.0, (1.0 - self.level) / self.rate)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SixtyPerMinute

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        admitted, level, wait = self.server.take()
        full_at = datetime.now(UTC) + timedelta(seconds=(self.server.limit - level) / self.server.rate)
        if admitted:
            status, body = 200, {
                "id": f"msg_{next(self.server.ids):024d}", "type": "message", "role": "assistant",
                "model": request.get("model", "claude-haiku-4-5"), "content": [{"type": "text", "text": "Hi"}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1},
            }  # fmt: skip
        else:
            status, body = 429, {"type": "error", "error": {"type": "rate_limit_error", "message": "rate limited"}}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", f"req_{next(self.server.ids):024d}")
        self.send_header("anthropic-ratelimit-requests-limit", f"{self.server.limit:.0f}")
        self.send_header("anthropic-ratelimit-requests-remaining", str(math.floor(level)))
        self.send_header("anthropic-ratelimit-requests-reset", full_at.isoformat().replace("+00:00", "Z"))
        if not admitted:
            self.send_header("retry-after", str(math.ceil(wait)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


async def sixty_per_minute(calls: int, tuning: str) -> dict[str, Any]:
    """``calls`` concurrent calls through a fresh client against a fresh (full) server."""
    server = SixtyPerMinute()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "ANTHROPIC_API_KEY": "sk-ant-bench-" + "x" * 24,
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "ANTHROPIC_RPM": "60",
        "LIMIT_TUNING": tuning,
    }
    client = AIClient(load_settings(env, env_file=None), heartbeat=False)
    try:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(client.generate_response(HAIKU, HELLO, options=PATIENT) for _ in range(calls)), return_exceptions=True
        )
        seconds = time.perf_counter() - started
        lowest = min((c["after"] for c in client.snapshot()["limit_changes"] if not c["key_label"]), default=60.0)
    finally:
        await client.aclose()
        server.shutdown()
        server.server_close()
    failed = sum(1 for r in results if isinstance(r, BaseException))
    return {"seconds": seconds, "429": server.answered[429], "failed": failed, "lowest": lowest}


async def one_key_pressured(port: int, seconds: float, rate_per_s: float) -> dict[str, Any]:
    """Calls at ``rate_per_s`` for ``seconds`` while the emulator answers 80 % of Backup 1's requests with 429."""
    keys = [f"sk-ant-bench-{n}-{'x' * 24}" for n in range(3)]
    scenario = {"faults": [{"kind": "rate_limit", "provider": "anthropic", "key": keys[1], "rate": 0.8,
                            "retry_after": 2}]}  # fmt: skip
    emulator = start_emulator(port, pin=False, scenario=scenario)
    env = {"ANTHROPIC_API_KEY": keys[0], "ANTHROPIC_API_KEY_2": keys[1], "ANTHROPIC_API_KEY_3": keys[2]}
    env |= {"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_RPM": "300"}
    client = AIClient(load_settings(env, env_file=None), heartbeat=False)
    limits: list[float] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            limits.append(client.snapshot()["providers"]["anthropic"]["limits"]["rpm"]["limit"])
            await asyncio.sleep(0.1)

    try:
        sampler = asyncio.create_task(sample())
        tasks, started = [], time.perf_counter()
        for n in range(int(seconds * rate_per_s)):
            await asyncio.sleep(max(0.0, started + n / rate_per_s - time.perf_counter()))
            tasks.append(asyncio.create_task(client.generate_response(HAIKU, HELLO, options=CallOptions(timeout_s=30))))
        results = await asyncio.gather(*tasks, return_exceptions=True)
        stop.set()
        await sampler
        snapshot = client.snapshot()
        backup = next(k for k in snapshot["providers"]["anthropic"]["keys"] if k["label"] == "Backup 1")
        refused = sum(c["count"] for c in emulator_stats(port)["counts"] if int(c["status"]) == 429)
    finally:
        await client.aclose()
        emulator.terminate()
        emulator.wait(10)
    answered = sum(1 for r in results if not isinstance(r, BaseException))
    key_lowest = min((c["after"] for c in snapshot["limit_changes"] if c["key_label"] == "Backup 1"), default=None)
    return {"calls": len(results), "answered": answered, "429": refused, "min": min(limits), "max": max(limits),
            "samples": len(limits), "backup_rpm_lowest": key_lowest, "backup_status": backup["status"]}  # fmt: skip


def emulator_stats(port: int) -> dict[str, Any]:
    """The emulator's ``/_emulator/stats``: requests by route, key and status."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_emulator/stats", timeout=10) as response:
        return json.loads(response.read())


async def run(calls: int, pressure_s: float) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    sixty = {}
    for tuning in ("off", "on"):
        sixty[tuning] = await sixty_per_minute(calls, tuning)
        print(f"60/min server, LIMIT_TUNING={tuning}: {sixty[tuning]}", flush=True)
    pressure = await one_key_pressured(free_port(), pressure_s, 1.5)
    print(f"429s on one of three keys: {pressure}", flush=True)
    return sixty, pressure


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="concurrent calls against the 60/min server")
    parser.add_argument("--pressure-s", type=float, default=40.0, help="seconds of traffic with one key pressured")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    sixty, pressure = asyncio.run(run(args.calls, args.pressure_s))
    off, on = sixty["off"], sixty["on"]
    ratio = on["seconds"] / off["seconds"]
    sixty_ok = ratio <= 1.1 and off["429"] == 0 and on["429"] == 0 and off["failed"] == on["failed"] == 0
    pressure_ok = pressure["min"] == pressure["max"] == 300.0 and pressure["answered"] == pressure["calls"]
    print(f"on / off = {ratio:.3f} (goal ≤ 1.1, zero 429s): {'PASS' if sixty_ok else 'MISS'}")
    print(f"provider limit {pressure['min']:g}–{pressure['max']:g}, answered {pressure['answered']}/"
          f"{pressure['calls']}: {'PASS' if pressure_ok else 'MISS'}")  # fmt: skip
    if args.write_results:
        write_section("limit_tuning", _section(args, load, sixty, ratio, sixty_ok, pressure, pressure_ok))
    return 0 if sixty_ok and pressure_ok else 1


def _section(
    args: argparse.Namespace,
    load: float,
    sixty: dict[str, dict[str, Any]],
    ratio: float,
    sixty_ok: bool,
    pressure: dict[str, Any],
    pressure_ok: bool,
) -> str:
    rows = "\n".join(
        f"| `LIMIT_TUNING={mode}` | {r['seconds']:.1f} | {r['429']} | {r['failed']} | {r['lowest']:g} |"
        for mode, r in sixty.items()
    )
    return f"""## Self-tuning limits: a server enforcing 60/min, and 429s on one of three keys

Command (run {datetime.now(UTC):%Y-%m-%d}): `.venv/bin/python benchmarks/limit_tuning.py --calls {args.calls} \
--pressure-s {args.pressure_s:g} --write-results`

Machine: {machine(f"anthropic {anthropic.__version__}")}; load average before the run {load:.2f}.

**{args.calls} concurrent calls, `ANTHROPIC_RPM=60`, against a server (not the emulator) enforcing 60 requests a
minute as a token bucket**, answering 429 with `retry-after` beyond it and sending the requests rate-limit headers.
The client admits its burst of 60 at once and then one a second; the headers then say almost nothing is left, but
all of it was this client's own use, so it is not pushback.

| run | seconds | 429s | failed calls | lowest provider limit |
|---|---:|---:|---:|---:|
{rows}

On / off: **{ratio:.3f}×** (goal ≤ 1.1× with zero 429s): **{"PASS" if sixty_ok else "MISS"}**.

**429s on one of three keys** (the emulator answers 80 % of Backup 1's requests with 429, `retry-after: 2`, as in
the demo's `key_429_pressure` phase), `ANTHROPIC_RPM=300`, {pressure["calls"]} calls at 90 a minute over
{args.pressure_s:g} s. A 429 moves its call to another key at once and cools Backup 1 down, so few of its requests
are sent at all; the provider's effective limit is read about every 0.1 s.

| 429s (Backup 1) | provider limit, lowest–highest ({pressure["samples"]} readings) | calls answered | \
Backup 1's own limit, lowest (stated: 100000) |
|---:|---:|---:|---:|
| {pressure["429"]} | {pressure["min"]:g}–{pressure["max"]:g} | {pressure["answered"]} of {pressure["calls"]} | \
{pressure["backup_rpm_lowest"]:g} |

Goal: the provider limit stays at 300 and every call is answered: **{"PASS" if pressure_ok else "MISS"}**.
"""


if __name__ == "__main__":
    sys.exit(main())
