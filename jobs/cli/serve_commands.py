"""The commands that run a long-lived process in the foreground: ``emulator``, ``worker`` and ``dashboard``.

Each hands over to its server (the emulator's, :mod:`pulsegate.jobs.service.worker_process`, Streamlit) and only turns a
known failure into a :class:`CommandError`. This is the one place that may import ``emulator`` (lazily).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pulsegate.core.loopback import is_loopback
from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.arguments import AddCommand, add_dashboard_address, port_number
from pulsegate.jobs.cli.command_error import CommandError

DEFAULT_EMULATOR_PORT = 8700


#: How the dashboard's Streamlit runs: headless, no usage stats, a minimal toolbar, no file watcher (a deployment
#: never edits its code in place). The dashboard benchmarks serve their toy page with the same flags.
STREAMLIT_FLAGS = (
    "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
    "--server.fileWatcherType", "none",
)  # fmt: skip


def cmd_emulator(args: argparse.Namespace) -> int:
    from pulsegate.emulator import EmulatorError, ScenarioError, load_scenario, serve

    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        serve(host=args.host, port=args.port, scenario=scenario)
    except (EmulatorError, ScenarioError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Scheduler, leader election and the HTTP API until SIGTERM/SIGINT (see jobs/service/worker.py)."""
    from pulsegate.jobs.service.worker_process import run_worker

    if not args.verbose:  # one line per job run and per request would bury what matters; the worker itself
        for name in ("httpx2", "httpx", "uvicorn"):  # logs missed and failed runs
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return run_worker(load_settings(), host=args.host, port=args.port)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from pulsegate import dashboard

    if not is_loopback(args.host) and load_settings().dashboard_password is None:
        raise CommandError(
            f"refusing to serve the dashboard on {args.host} without a password: set DASHBOARD_PASSWORD "
            "(8+ characters), or bind to 127.0.0.1"
        )
    app = Path(dashboard.__file__).resolve().parent / "server.py"  # the app plus its export route
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        *STREAMLIT_FLAGS,
    ]
    # exec, not a child process: SIGTERM from honcho / a test reaches Streamlit itself instead of orphaning it
    sys.stdout.flush()
    os.execv(sys.executable, command)  # noqa: S606 — our own interpreter and script, no shell


def add_emulator_command(add: AddCommand) -> None:
    emulator = add("emulator", cmd_emulator, "run the local Anthropic/OpenAI emulator (loopback only)")
    emulator.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    emulator.add_argument("--port", type=port_number, default=DEFAULT_EMULATOR_PORT, help="port (default 8700)")
    emulator.add_argument("--scenario", default=None, help="scenario file (TOML or JSON), see docs/emulator.md")


def add_worker_command(add: AddCommand) -> None:
    worker = add("worker", cmd_worker, "run the background worker: scheduled jobs, leader election, HTTP API")
    worker.add_argument("--host", default=None, help="address to bind the API (default $WORKER_HOST or 127.0.0.1)")
    worker.add_argument("--port", type=port_number, default=None, help="API port (default $WORKER_PORT or 8600)")


def add_dashboard_command(add: AddCommand) -> None:
    dash = add("dashboard", cmd_dashboard, "run the Streamlit dashboard")
    add_dashboard_address(dash, "")
