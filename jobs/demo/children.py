"""The demo's child processes: each in its own session (so its whole process group can be signalled and no
grandchild outlives the demo), its output copied to a log file and, prefixed with its name, to the console.
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

from jobs.parent_death import exit_with_parent


class ChildFailed(RuntimeError):
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
        self.process: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None
        self._console_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def spawn(self) -> Child:
        """Start the process; call from the main thread before any thread is started (see
        :mod:`jobs.parent_death`), then :meth:`copy_output`."""
        self.process = subprocess.Popen(  # noqa: S603 — our own interpreter and modules, no shell
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: a terminal's Ctrl-C reaches only the demo itself
            preexec_fn=exit_with_parent(),  # a demo killed by SIGKILL takes its children with it
        )
        return self

    def copy_output(self) -> Child:
        """Copy the child's output to its log (and the console) from a thread of its own."""
        self._pump = threading.Thread(target=self._copy_output, name=f"demo-{self.name}-output", daemon=True)
        self._pump.start()
        return self

    def start(self) -> Child:
        return self.spawn().copy_output()

    def _copy_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if self.echo:
                    with self._console_lock, contextlib.suppress(OSError, ValueError):
                        self.console.write(f"{self.name:<9}| {line}")
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
