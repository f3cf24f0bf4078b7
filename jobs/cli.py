"""The ``pulsegate`` command.

Every sub-command turns a known failure (bad settings, unreachable database, bad scenario) into one clear message
on stderr and exit status 2 — never a traceback. This is the one place that may import ``emulator`` (lazily).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import PulsegateError
from core.settings import Settings, load_settings

EXIT_USAGE = 2
DEFAULT_EMULATOR_PORT = 8700
DEFAULT_DASHBOARD_PORT = 8501

log = logging.getLogger("pulsegate")


class CommandError(PulsegateError):
    """A CLI-level problem (a bad flag value or file) reported as one line."""


def _settings() -> Settings:
    return load_settings()


def cmd_migrate(args: argparse.Namespace) -> int:
    import migrations
    from core.store import check_connection, create_store_engine, describe_url

    settings = _settings()
    engine = create_store_engine(settings.database_url)
    try:
        check_connection(engine)
    finally:
        engine.dispose()
    migrations.upgrade(settings.database_url, args.revision)
    print(f"store ready: {describe_url(engine.url)} at revision {migrations.head_revision()}")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    settings = _settings()
    for name, value in settings.describe().items():
        print(f"{name:<24} {value}")
    return 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from emulator import EmulatorError, ScenarioError, load_scenario, serve

    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        serve(host=args.host, port=args.port, scenario=scenario)
    except (EmulatorError, ScenarioError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Embedded defaults: a migrated SQLite store and the provider emulator (later: worker, traffic, dashboard)."""
    args.revision = "head"
    cmd_migrate(args)
    base = f"http://{args.host}:{args.port}"
    print(
        "\nPulsegate demo\n"
        f"  provider emulator   {base}  (ANTHROPIC_BASE_URL={base}  OPENAI_BASE_URL={base}/v1)\n"
        f"  emulator stats      {base}/_emulator/stats\n"
        "  Ctrl-C stops it.\n"
    )
    return cmd_emulator(args)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()


def cmd_worker(args: argparse.Namespace) -> int:
    from core.store import check_connection, create_store_engine, describe_url

    settings = _settings()
    engine = create_store_engine(settings.database_url)
    check_connection(engine)
    log.info("worker started on %s; no jobs are scheduled yet — SIGTERM stops it", describe_url(engine.url))
    engine.dispose()
    _wait_for_signal()
    log.info("worker stopped")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import dashboard

    app = Path(dashboard.__file__).resolve().parent / "app.py"
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
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    return subprocess.call(command)  # noqa: S603 — our own interpreter and script, no shell


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0–65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pulsegate", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    migrate = add("migrate", cmd_migrate, "create or upgrade the store's tables (DATABASE_URL)")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")

    add("settings", cmd_settings, "show the settings in force, secrets masked")

    for name, handler, help_text in (
        ("emulator", cmd_emulator, "run the local Anthropic/OpenAI emulator (loopback only)"),
        ("demo", cmd_demo, "run Pulsegate on embedded defaults: SQLite store and the provider emulator"),
    ):
        sub = add(name, handler, help_text)
        sub.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
        sub.add_argument("--port", type=_port, default=DEFAULT_EMULATOR_PORT, help="port (default 8700)")
        sub.add_argument("--scenario", default=None, help="scenario file (TOML or JSON), see docs/emulator.md")

    add("worker", cmd_worker, "run the background worker")

    dash = add("dashboard", cmd_dashboard, "run the Streamlit dashboard")
    dash.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help="address (default $HOST or 127.0.0.1)"
    )
    dash.add_argument(
        "--port",
        type=_port,
        default=int(os.environ.get("PORT", DEFAULT_DASHBOARD_PORT)),
        help="port (default $PORT or 8501)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        return args.handler(args)
    except PulsegateError as exc:
        print(f"pulsegate {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
