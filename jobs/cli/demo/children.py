"""The demo's child processes: each in its own session (so its whole process group can be signalled and no
grandchild outlives the demo), writing straight to its log file, which a thread of the demo tails to the console
with the child's name in front.

A child writes to its file, not to a pipe the demo reads: when the demo dies (even by SIGKILL) the child's output
still has somewhere to go. Streamlit, for one, hangs on SIGTERM when its stdout is a pipe nobody reads any more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from pulsegate.core.errors import PulsegateError
from pulsegate.jobs.cli.parent_death import exit_with_parent

#: How often a child's log is read for new lines to echo.
TAIL_INTERVAL_S = 0.1


class ChildFailed(PulsegateError, RuntimeError):
    """A child exited (or never became ready) while the demo needed it."""


class Child:
    """One component (``name``) of the demo as a process group. ``echo=False`` keeps its output in the log only."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_dir: Path,
        *,
        echo: bool = True,
        console: TextIO | None = None,
        grace_s: float = 10.0,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.echo = echo
        self.console = console or sys.stdout
        self.grace_s = grace_s
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self._log_start = 0
        self._console_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self) -> Child:
        """Start the process; call from the main thread before any thread is started (see
        :mod:`pulsegate.jobs.cli.parent_death`), then :meth:`copy_output`."""
        with self.log_path.open("ab") as log:
            self._log_start = log.tell()
            self.process = subprocess.Popen(  # noqa: S603 — our own interpreter and modules, no shell
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches only the demo itself
                preexec_fn=exit_with_parent(),  # a demo killed by SIGKILL takes its children with it
            )
        return self

    def copy_output(self) -> Child:
        """Echo the child's log to the console from a thread of its own (``echo=False``: the log only)."""
        if self.echo:
            self._pump = threading.Thread(target=self._copy_output, name=f"demo-{self.name}-output", daemon=True)
            self._pump.start()
        return self

    def _copy_output(self) -> None:
        """Tail the log from where this child began, until the child has exited and its last line is shown."""
        assert self.process is not None
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            partial = b""
            while True:
                exited = self.process.poll() is not None  # checked before reading: nothing written after is lost
                data = log.read()
                lines = (partial + data).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    self._echo(line.decode("utf-8", errors="replace"))
                if exited:
                    if partial:
                        self._echo(partial.decode("utf-8", errors="replace"))
                    return
                if not data:
                    time.sleep(TAIL_INTERVAL_S)

    def _echo(self, line: str) -> None:
        with self._console_lock, contextlib.suppress(OSError, ValueError):
            self.console.write(f"{self.name:<9}| {line}\n")
            self.console.flush()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, url: str, timeout_s: float, cancel: threading.Event | None = None) -> None:
        """Poll ``url`` until it answers 2xx (or ``cancel`` is set); ChildFailed if the process exits first or
        time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                return
            if not self.running():
                code = self.process.returncode if self.process is not None else None
                raise ChildFailed(f"{self.name} exited with status {code} before it was ready (see {self.log_path})")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — loopback http URL
                    if 200 <= response.status < 300:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise ChildFailed(f"{self.name} was not ready within {timeout_s:g} s (see {self.log_path})")

    def signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the child's process group; False when nothing of it is left."""
        if self.process is None:
            return False
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def stop(self, *, grace_s: float | None = None) -> int | None:
        """SIGTERM the group, wait, SIGKILL whatever is left of it (stragglers included); the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.process.wait()
        self.signal_group(signal.SIGKILL)  # a grandchild that ignored SIGTERM must not outlive the demo
        if self._pump is not None:
            self._pump.join(timeout=5)
        return self.process.returncode
