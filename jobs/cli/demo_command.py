"""``pulsegate demo``: everything on loopback with fake keys; the flags here, the work in
:mod:`pulsegate.jobs.cli.demo`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pulsegate.jobs.cli.arguments import AddCommand, port_number
from pulsegate.jobs.cli.command_error import CommandError


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything on loopback with fake keys: emulator, worker, traffic, webhook sink, dashboard (jobs/cli/demo/)."""
    from pulsegate.jobs.cli.demo.orchestrator import DemoOptions, run_demo
    from pulsegate.jobs.cli.demo.scenario import MIN_CYCLE_S
    from pulsegate.jobs.cli.demo.setup import make_plan

    if args.cycle_s < MIN_CYCLE_S:
        raise CommandError(f"--cycle-s: the cycle must last at least {MIN_CYCLE_S:g} s, got {args.cycle_s:g}")
    if args.rate <= 0:
        raise CommandError(f"--rate: expected a positive number of calls per second, got {args.rate:g}")
    ports = {"dashboard": args.port, "worker": args.worker_port, "emulator": args.emulator_port, "sink": args.sink_port}
    plan = make_plan(Path(args.dir), cycle_s=args.cycle_s, rate=args.rate, ports=ports, database_url=args.database_url)
    return run_demo(plan, DemoOptions(open_browser=not args.no_browser, verbose=args.verbose))


def add_demo_command(add: AddCommand) -> None:
    from pulsegate.jobs.cli.demo.scenario import DEFAULT_CYCLE_S
    from pulsegate.jobs.cli.demo.setup import DEFAULT_DIR, DEFAULT_PORTS

    demo = add(
        "demo",
        cmd_demo,
        "the whole product on loopback with fake keys: emulator, worker, traffic, webhook sink and dashboard",
    )
    demo.add_argument(
        "--cycle-s", type=float, default=DEFAULT_CYCLE_S, help="seconds per failure cycle (default 180, min 20)"
    )
    demo.add_argument("--rate", type=float, default=3.0, help="traffic: calls per second (default 3)")
    demo.add_argument("--dir", default=DEFAULT_DIR, help=f"folder for its store and logs (default {DEFAULT_DIR})")
    demo.add_argument("--database-url", default=None, help="store (default: a fresh SQLite file in --dir)")
    demo.add_argument("--no-browser", action="store_true", help="do not open the dashboard in a browser")
    for flag, name in (("--port", "dashboard"), ("--worker-port", "worker"), ("--emulator-port", "emulator"),
                       ("--sink-port", "sink")):  # fmt: skip
        shown = f"{name} port (default {DEFAULT_PORTS[name]} if free; 0 = any free port)"
        demo.add_argument(flag, type=port_number, default=None, help=shown)
