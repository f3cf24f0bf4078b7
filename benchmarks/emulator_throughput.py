"""Emulator throughput: how many requests per second one emulator process serves on one core.

The emulator runs in its own process, pinned to CPU 0 (when the machine has more than one CPU the load generator
is pinned to the others). The load generator is a raw asyncio + httptools HTTP/1.1 client with many keep-alive
connections — far cheaper per request than httpx, so the emulator, not the client, is what is measured. Besides
requests/s it reports the emulator's own CPU time per request (from /proc), which is the capacity figure that does
not depend on the client: 1 / (CPU per request) = requests/s the emulator could sustain on one saturated core.

    .venv/bin/python benchmarks/emulator_throughput.py                  # ~13 s, prints a table
    .venv/bin/python benchmarks/emulator_throughput.py --write-results  # also rewrites its section of RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httptools
from results import machine, write_section
from support import free_port

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = {"defaults": {"requests": 1_000_000_000, "tokens": 1_000_000_000_000}}
PROMPT = "Summarise the benchmark run in one short sentence please."


@dataclass
class Case:
    name: str
    path: str
    headers: dict[str, str]
    body: dict[str, object]


CASES = [
    Case(
        "anthropic messages (non-streaming)",
        "/v1/messages",
        {"authorization": "Bearer bench-key-a", "anthropic-version": "2026-10-21"},
        {"model": "claude-sonnet-4-6", "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}]},
    ),
    Case(
        "openai chat.completions (non-streaming)",
        "/v1/chat/completions",
        {"authorization": "Bearer bench-key-o"},
        {"model": "gpt-4.1", "messages": [{"role": "user", "content": PROMPT}]},
    ),
    Case(
        "anthropic messages (streaming, ~20 deltas)",
        "/v1/messages",
        {"authorization": "Bearer bench-key-a", "anthropic-version": "2026-10-21"},
        {
            "model": "claude-sonnet-4-6",
            "max_tokens": 256,
            "stream": True,
            "messages": [{"role": "user", "content": PROMPT}],
        },
    ),
    Case(
        "openai chat.completions (streaming + usage)",
        "/v1/chat/completions",
        {"authorization": "Bearer bench-key-o"},
        {
            "model": "gpt-4.1",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}],
        },
    ),
]


def raw_request(case: Case) -> bytes:
    """The request bytes, with SDK-like headers so header parsing costs what it costs in real use."""
    body = json.dumps(case.body).encode()
    headers = {
        "host": "127.0.0.1",
        "accept": "application/json",
        "content-type": "application/json",
        "user-agent": "Bench/1.0",
        "x-stainless-lang": "python",
        "x-stainless-retry-count": "0",
        "content-length": str(len(body)),
        **case.headers,
    }
    head = f"POST {case.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + body


# -- the emulator process -------------------------------------------------------------------------------------------
def serve_pinned(port: int) -> None:
    """Child entry point: pin to CPU 0 and serve."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {0})
    from pulsegate.emulator import parse_scenario, serve

    serve("127.0.0.1", port, parse_scenario(SCENARIO))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load generator ------------------------------------------------------------------------------------------------
class Connection(asyncio.Protocol):
    """One keep-alive connection that sends a request and waits for the complete response."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    async def send(self, data: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


async def drive(port: int, request: bytes, connections: int, seconds: float) -> tuple[int, int]:
    """Hammer the emulator for `seconds`; returns (completed requests, non-200 responses)."""
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(Connection, "127.0.0.1", port))[1] for _ in range(connections)]
    deadline = time.monotonic() + seconds
    done = errors = 0

    async def worker(conn: Connection) -> None:
        nonlocal done, errors
        while time.monotonic() < deadline:
            status = await conn.send(request)
            done += 1
            if status != 200:
                errors += 1

    await asyncio.gather(*(worker(c) for c in conns))
    for conn in conns:
        assert conn.transport is not None
        conn.transport.close()
    return done, errors


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError("the emulator did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0, help="per case (4 cases; keep the total <= 15 s)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--write-results", action="store_true", help="rewrite its section of benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.serve:
        serve_pinned(args.serve)
        return 0

    ncpu = os.cpu_count() or 1
    if ncpu > 1:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, set(range(1, ncpu)))
    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_for_port(port)
        loop = new_loop()
        for case in CASES:
            request = raw_request(case)
            loop.run_until_complete(drive(port, request, 8, 0.3))  # warm-up
            cpu0, own0, t0 = cpu_seconds(child.pid), time.process_time(), time.monotonic()
            done, errors = loop.run_until_complete(drive(port, request, args.connections, args.seconds))
            elapsed, cpu = time.monotonic() - t0, cpu_seconds(child.pid) - cpu0
            client_use = (time.process_time() - own0) / elapsed
            rows.append((case.name, done / elapsed, cpu / max(done, 1) * 1e6, cpu / elapsed, client_use, errors))
        loop.close()
    finally:
        child.terminate()
        child.wait(10)

    lines = [
        "| case | requests/s | emulator CPU µs/request | emulator CPU use | load-generator CPU use | errors |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {n} | {rps:,.0f} | {us:.0f} | {use:.0%} | {client:.0%} | {err} |"
            for n, rps, us, use, client, err in rows
        ),
    ]
    table = "\n".join(lines)
    print(table)
    if args.write_results:
        write_results(table, args)
    return 0 if all(r[5] == 0 for r in rows) else 1


def write_results(table: str, args: argparse.Namespace) -> None:
    command = (
        f".venv/bin/python benchmarks/emulator_throughput.py --seconds {args.seconds:g} "
        f"--connections {args.connections} --write-results"
    )
    text = f"""## Emulator throughput

Command (run {time.strftime("%Y-%m-%d")}):
`{command}`

Machine: {machine()}.

The emulator process is pinned to CPU 0 (uvloop + httptools, one process, one thread); the load generator
(raw asyncio/httptools keep-alive client, {args.connections} connections) is pinned to the other CPU(s).
Each case runs {args.seconds:g} s after a 0.3 s warm-up; every response was checked to be a 200.

{table}

"Emulator CPU use" is the emulator's CPU time divided by wall time: close to 100 % means the emulator's core was
saturated, so requests/s is its capacity; lower means the load generator was the limit, and
1e6 / (CPU µs/request) is what one saturated core would serve. Default scenario (no latency, no faults), budgets
raised so the benchmark never hits a 429. On a shared 2-vCPU VM repeated runs vary by up to about ±30 % (other
work shares the host): read the figures as "thousands of requests/s per core", not to the last digit.
"""
    print(f"wrote {write_section('emulator', text)}")


if __name__ == "__main__":
    sys.exit(main())
