"""``pulsegate up``: the Procfile's lines in one command, for hosts that do not read Procfiles.

It runs ``pulsegate migrate`` (the ``release:`` line), then ``pulsegate worker`` and ``pulsegate dashboard`` (the
``worker:`` and ``web:`` lines) — and ``pulsegate gateway`` (the ``gateway:`` line) with ``--gateway`` or when
``GATEWAY_PORT`` is set — as child processes, each in its own process group, with the real keys and
``DATABASE_URL`` from the environment. It refuses to start, before anything runs, when no provider key is configured
or when the dashboard would face a public address without a password.

Supervision: SIGINT / SIGTERM are forwarded to both children, which stop cleanly, and ``up`` exits 0. If one child
exits on its own, the other is stopped and ``up`` exits non-zero (the child's status, or 128 + the signal that killed
it). A child that does not stop within the grace period is killed with its whole process group; on Linux each child
also gets SIGTERM if ``up`` itself dies (``PR_SET_PDEATHSIG``), so no process is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from pulsegate.core.errors import PulsegateError
from pulsegate.core.loopback import is_loopback
from pulsegate.core.settings import Settings, load_settings
from pulsegate.jobs.cli.arguments import add_dashboard_address
from pulsegate.jobs.cli.parent_death import exit_with_parent

log = logging.getLogger("pulsegate.up")

#: How long the children get to stop after SIGTERM before their process groups are killed.
STOP_GRACE_S = 20.0
POLL_S = 0.1
#: The exact refusal when no key is configured (tests/test_up.py asserts it).
NO_KEY_MESSAGE = (
    "no provider key is configured: set ANTHROPIC_API_KEY and/or OPENAI_API_KEY "
    "(more keys: ANTHROPIC_API_KEY_2, OPENAI_API_KEY_2, …) in the environment or in .env; "
    "to try Pulsegate without keys, run `pulsegate demo`"
)
#: The Procfile line each step stands for (tests/test_up.py keeps the two in step).
PROCFILE_STEPS = {"release": "migrate", "worker": "worker", "web": "dashboard", "gateway": "gateway"}


class UpError(PulsegateError):
    """``pulsegate up`` cannot start as configured (reported as one line, exit 2)."""


def require_keys(settings: Settings) -> None:
    if not settings.anthropic_keys and not settings.openai_keys:
        raise UpError(NO_KEY_MESSAGE)


def require_dashboard_password(settings: Settings, host: str) -> None:
    """The dashboard's own refusal, checked before anything starts (so no worker is left half-started)."""
    if not is_loopback(host) and settings.dashboard_password is None:
        raise UpError(
            f"refusing to serve the dashboard on {host} without a password: set DASHBOARD_PASSWORD "
            "(8+ characters), or bind to 127.0.0.1"
        )


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    signalled: bool = field(default=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 — our own interpreter and module, no shell
            self.argv,
            stdin=subprocess.DEVNULL,
            process_group=0,  # its own group: a terminal's Ctrl-C reaches only `up`, which forwards it
            preexec_fn=exit_with_parent(),  # up is single-threaded: safe
        )

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal_group(self, signum: int) -> None:
        """Signal the child's whole process group (anything it started, too); quiet when it is gone."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


def exit_status(returncode: int) -> int:
    """A child's status as ``up``'s exit code: its own, or 128 + the signal that killed it; never 0."""
    if returncode > 0:
        return returncode
    if returncode < 0:
        return 128 - returncode
    return 1  # a server that exits 0 on its own still stopped serving


class Supervisor:
    """Runs children, forwards SIGINT/SIGTERM to them, and stops them all when one stops."""

    def __init__(self, grace_s: float = STOP_GRACE_S, out: Any = None) -> None:
        self.grace_s = grace_s
        self.out = out or sys.stderr
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self._previous: dict[int, Any] = {}

    def say(self, text: str) -> None:
        print(f"pulsegate up: {text}", file=self.out, flush=True)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_signal is not None:  # a second Ctrl-C: no more waiting
            for child in self.children:
                child.signal_group(signal.SIGKILL)
            return
        self.stop_signal = signum
        for child in self.children:
            if child.poll() is None:
                child.signal_group(signum)
                child.signalled = True

    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def run_to_end(self, child: Child) -> int:
        """Run one child (``migrate``) to its end; a stop signal is forwarded to it."""
        self.children.append(child)
        child.start()
        assert child.process is not None
        while (code := child.process.poll()) is None:
            time.sleep(POLL_S)
        self.children.remove(child)
        return code

    def start(self, child: Child) -> None:
        self.children.append(child)
        child.start()
        if self.stop_signal is not None:  # the signal came while this one was starting
            child.signal_group(self.stop_signal)
            child.signalled = True

    def watch(self) -> int:
        """Until a stop signal (→ 0 once every child ended) or a child's own exit (→ non-zero)."""
        while True:
            if self.stop_signal is not None:
                name = signal.Signals(self.stop_signal).name
                self.say(f"{name} received: stopping {', '.join(c.name for c in self.children)}")
                self.stop_all(already_signalled=True)
                return 0
            for child in self.children:
                code = child.poll()
                if code is not None:
                    others = [c.name for c in self.children if c is not child and c.poll() is None]
                    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
                    stopping = f"; stopping {', '.join(others)}" if others else ""
                    self.say(f"the {child.name} {how}{stopping}")
                    self.stop_all()
                    return exit_status(code)
            time.sleep(POLL_S)

    def stop_all(self, *, already_signalled: bool = False) -> None:
        """SIGTERM every child's group, wait up to the grace period, then SIGKILL what is left; reap all."""
        for child in self.children:
            if child.poll() is None and not (already_signalled and child.signalled):
                child.signal_group(signal.SIGTERM)
                child.signalled = True
        deadline = time.monotonic() + self.grace_s
        while any(c.poll() is None for c in self.children) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        for child in self.children:
            if child.poll() is None:
                self.say(f"the {child.name} did not stop within {self.grace_s:g} s: killing it")
            child.signal_group(signal.SIGKILL)  # also whatever the child left in its group
            if child.process is not None:
                child.process.wait()


def pulsegate_argv(*args: str, verbose: bool = False) -> list[str]:
    return [sys.executable, "-m", "pulsegate.jobs.cli", *(["-v"] if verbose else []), *args]


def cmd_up(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from pulsegate.core.store import describe_url

    settings = load_settings()
    require_keys(settings)
    require_dashboard_password(settings, args.host)
    verbose = bool(getattr(args, "verbose", False))
    with Supervisor() as supervisor:
        if not args.no_migrate:
            code = supervisor.run_to_end(Child("migrate", pulsegate_argv(PROCFILE_STEPS["release"], verbose=verbose)))
            if supervisor.stop_signal is not None:
                return 0
            if code != 0:
                supervisor.say(f"migrate failed (status {code}): the worker and the dashboard were not started")
                return exit_status(code)
        worker = Child("worker", pulsegate_argv(PROCFILE_STEPS["worker"], verbose=verbose))
        dash = Child("dashboard", pulsegate_argv(PROCFILE_STEPS["web"], "--host", args.host, "--port", str(args.port)))
        supervisor.start(worker)
        supervisor.start(dash)
        gateway = None
        if args.gateway or os.environ.get("GATEWAY_PORT"):
            gateway = Child("gateway", pulsegate_argv(PROCFILE_STEPS["gateway"], verbose=verbose))
            supervisor.start(gateway)
        keys = f"{len(settings.anthropic_keys)} Anthropic, {len(settings.openai_keys)} OpenAI"
        gateway_line = (
            f"  gateway     http://{settings.gateway_host}:{settings.gateway_port}  (pid {gateway.pid}; "
            "tokens: pulsegate gateway-token create --name APP)\n"
            if gateway is not None
            else ""
        )
        print(
            f"\nPulsegate up — store: {describe_url(make_url(settings.database_url))}; keys: {keys}\n"
            f"  dashboard   http://{args.host}:{args.port}  (pid {dash.pid})\n"
            f"  worker API  http://{settings.worker_host}:{settings.worker_port}  (pid {worker.pid}; "
            "/healthz, /metrics, /api/admin/ai-health)\n"
            f"{gateway_line}"
            f"  Ctrl-C or SIGTERM stops {'all three' if gateway is not None else 'both'}.\n",
            flush=True,
        )
        if settings.database_url.startswith("sqlite"):
            supervisor.say(
                "DATABASE_URL is SQLite: fine on one machine with a lasting disk; "
                "set DATABASE_URL=postgresql+psycopg://… in production"
            )
        if settings.admin_token is None:
            supervisor.say("ADMIN_TOKEN is not set: the worker's /api/admin/* routes answer 503 until it is")
        return supervisor.watch()


def add_up_command(add: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]) -> None:
    """Register ``pulsegate up`` with the CLI's ``add`` helper (jobs/cli/commands.py)."""
    up = add("up", cmd_up, "production: migrate, then run the worker and the dashboard together (needs a key)")
    add_dashboard_address(up, "dashboard ", "; the worker's API: WORKER_HOST / WORKER_PORT")
    up.add_argument("--no-migrate", action="store_true", help="skip 'pulsegate migrate' (a release step ran it)")
    up.add_argument(
        "--gateway",
        action="store_true",
        help="also run the gateway (GATEWAY_HOST / GATEWAY_PORT; on by itself when GATEWAY_PORT is set)",
    )
