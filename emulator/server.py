"""Running the emulator: `serve` (blocking, for the CLI) and `EmulatorServer` (background thread, for tests).

Both bind to loopback only and use uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from pulsegate.emulator.app import Emulator
from pulsegate.emulator.clock import Clock, ManualClock, MonotonicClock
from pulsegate.emulator.errors import EmulatorError
from pulsegate.emulator.protocol import HttpProtocol
from pulsegate.emulator.scenario import Fault, Scenario
from pulsegate.emulator.scenario_parser import load_scenario, parse_fault, parse_scenario

T = TypeVar("T")


def check_loopback(host: str) -> None:
    """Raise EmulatorError for any host that is not loopback, before a socket is opened."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise EmulatorError(
        f"refusing to bind the emulator to {host}: it binds to loopback only (127.0.0.0/8, ::1 or localhost)"
    )


def _bind(host: str, port: int) -> socket.socket:
    address = "127.0.0.1" if host == "localhost" else host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise EmulatorError(f"cannot bind the emulator to {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop if installed (about twice the throughput), else the default loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _make_clock(clock: Clock | str | None) -> Clock | None:
    if clock is None or not isinstance(clock, str):
        return clock
    if clock == "manual":
        return ManualClock()
    if clock == "real":
        return MonotonicClock()
    raise EmulatorError(f"clock must be 'real', 'manual' or a Clock object, got {clock!r}")


def _as_scenario(scenario: Scenario | Mapping[str, Any] | str | Path | None) -> Scenario | None:
    if scenario is None or isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str | Path):
        return load_scenario(scenario)
    return parse_scenario(scenario)


def _url(host: str, port: int) -> str:
    address = "127.0.0.1" if host == "localhost" else host.strip("[]")
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


async def _close_all(server: asyncio.Server, connections: set[HttpProtocol]) -> None:
    server.close()
    for conn in list(connections):
        conn.shutdown()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 2.0)


def serve(host: str = "127.0.0.1", port: int = 8700, scenario: Scenario | None = None) -> None:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM."""
    check_loopback(host)
    sock = _bind(host, port)
    app = Emulator(scenario)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        connections: set[HttpProtocol] = set()
        server = await loop.create_server(lambda: HttpProtocol(app, connections), sock=sock)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        bound = sock.getsockname()[1]
        print(f"pulsegate emulator listening on {_url(host, bound)} (admin: /_emulator/)", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            await _close_all(server, connections)

    with asyncio.Runner(loop_factory=new_event_loop) as runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(main())


class EmulatorServer:
    """The emulator on a background thread with its own event loop; use as a context manager.

    Control methods (`set_scenario`, `stats`, `reset`, `add_fault`) run on the server's loop, so they are
    thread-safe. With a manual clock, `server.clock.advance(seconds)` (or `server.advance`) moves time.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: Scenario | Mapping[str, Any] | str | Path | None = None,
        clock: Clock | str | None = None,
    ) -> None:
        check_loopback(host)
        self.host = host
        self._requested_port = port
        self.app = Emulator(_as_scenario(scenario), _make_clock(clock))
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        sock = _bind(self.host, self._requested_port)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            connections: set[HttpProtocol] = set()
            try:
                server = loop.run_until_complete(
                    loop.create_server(lambda: HttpProtocol(self.app, connections), sock=sock)
                )
                self._stop = asyncio.Event()
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_until_complete(self._stop.wait())
                loop.run_until_complete(_close_all(server, connections))
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=f"pulsegate-emulator-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread = None
            raise EmulatorError(f"emulator failed to start: {failure[0]}") from failure[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return _url(self.host, self.port)

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    # -- control --------------------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (or directly when the server is not running)."""
        loop = self._loop
        if self._thread is None or loop is None or threading.current_thread() is self._thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return future.result(10)

    @property
    def scenario(self) -> Scenario:
        return self.app.scenario

    def set_scenario(self, scenario: Scenario | Mapping[str, Any] | str | Path) -> None:
        """Replace the scenario (a Scenario, a dict in the file shape, or a file path)."""
        parsed = _as_scenario(scenario)
        assert parsed is not None
        self._call(lambda: self.app.set_scenario(parsed))

    def add_fault(self, fault: Fault | Mapping[str, Any]) -> None:
        """Append one fault rule (a Fault or a dict like a `[[faults]]` table)."""
        rule = fault if isinstance(fault, Fault) else parse_fault(fault)
        self._call(lambda: self.app.add_fault(rule))

    def stats(self) -> dict[str, Any]:
        return self._call(self.app.stats.snapshot)

    def reset(self) -> None:
        self._call(self.app.reset)

    @property
    def clock(self) -> Clock:
        return self.app.clock

    def advance(self, seconds: float) -> float:
        """Move a manual clock forward; EmulatorError on the real clock."""
        advance = getattr(self.app.clock, "advance", None)
        if advance is None:
            raise EmulatorError("the emulator runs on the real clock; use clock='manual' to move time")
        return float(advance(seconds))
