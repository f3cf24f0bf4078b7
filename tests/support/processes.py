"""Real processes for tests: the ``pulsegate`` CLI, servers on free loopback ports, and clean shutdown."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

PULSEGATE = [sys.executable, "-m", "pulsegate.jobs.cli"]
ROOT = Path(__file__).resolve().parents[2]
#: Variables a developer may have set that would leak into a test's subprocess.
SCRUBBED_PREFIXES = ("ANTHROPIC_", "OPENAI_", "DATABASE_URL", "REDIS_URL", "UPSTASH_", "MONITORING_", "ADMIN_TOKEN")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.update(extra or {})
    return env


def run_cli(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PULSEGATE, *args], cwd=cwd, env=clean_env(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def wait_http(url: str, timeout: float = 30.0, process: subprocess.Popen[str] | None = None) -> int:
    """Poll ``url`` until it answers (any HTTP status); fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s ({last})")


class BackgroundProcess:
    """A ``pulsegate`` sub-command running in the background; stopped with SIGTERM, output kept for asserts."""

    def __init__(self, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.args = list(args)
        self.cwd = cwd
        self.env = clean_env(env)
        self.process: subprocess.Popen[str] | None = None
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        """Block until ``text`` appears in the output; fail early if the process exits first."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None and self._reader is not None:
                self._reader.join(timeout=2)
                if text in self.output:
                    return
                raise RuntimeError(
                    f"process exited with {self.process.returncode} before printing {text!r}:\n{self.output}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not printed within {timeout} s:\n{self.output}")
            time.sleep(0.05)

    def __enter__(self) -> BackgroundProcess:
        self.process = subprocess.Popen(
            [*PULSEGATE, *self.args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return int(self.process.returncode)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


class LineProcess:
    """A Python module run as a child process and driven line by line: one command on stdin, one JSON answer on
    stdout. Closing stdin asks it to finish; :meth:`stop` waits for that (then kills)."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send_line(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """The next JSON line; fails the test when none comes within ``timeout_s`` or the process is gone."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                raise AssertionError(f"process {self.process.pid} did not answer within {timeout_s} s")
        line = self.process.stdout.readline()
        assert line, f"process {self.process.pid} exited with {self.process.wait()}"
        return dict(json.loads(line))

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
