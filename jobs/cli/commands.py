"""The ``pulsegate`` command: the parser and ``main``.

Every sub-command turns a known failure (bad settings, unreachable database, bad scenario) into one clear message
on stderr and exit status 2 — never a traceback. Each command lives in its own module beside this one
(``serve_commands``, ``demo_command``, ``probe_command``, ``alert_commands``, ``silence_commands``,
``settings_command``, ``up``) and registers its flags through ``add``; this module wires them in the order
``--help`` lists them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from pulsegate.core.errors import PulsegateError
from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.alert_commands import add_alert_commands
from pulsegate.jobs.cli.demo_command import add_demo_command
from pulsegate.jobs.cli.probe_command import add_probe_command
from pulsegate.jobs.cli.serve_commands import add_dashboard_command, add_emulator_command, add_worker_command

EXIT_USAGE = 2
#: ``pulsegate --help`` shows these as they are: plain text, no docstring markup.
DESCRIPTION = (
    "Pulsegate keeps a Python app's Anthropic and OpenAI calls alive under load, and shows live how they are doing."
)
EPILOG = "Run 'pulsegate COMMAND --help' for a command's options."

log = logging.getLogger("pulsegate")


def cmd_migrate(args: argparse.Namespace) -> int:
    from pulsegate import migrations
    from pulsegate.core.store import check_connection, create_store_engine, describe_url

    settings = load_settings()
    engine = create_store_engine(settings.database_url)
    try:
        check_connection(engine)
    finally:
        engine.dispose()
    migrations.upgrade(settings.database_url, args.revision)
    print(f"store ready: {describe_url(engine.url)} at revision {migrations.head_revision()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pulsegate", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    migrate = add("migrate", cmd_migrate, "create or upgrade the store's tables (DATABASE_URL)")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")

    from pulsegate.jobs.cli.settings_command import cmd_settings

    add("settings", cmd_settings, "show the settings in force, secrets masked; warn when no provider key is set")

    add_emulator_command(add)
    add_demo_command(add)
    add_worker_command(add)
    add_probe_command(add)
    add_alert_commands(commands)
    add_dashboard_command(add)

    from pulsegate.jobs.cli.gateway_commands import add_gateway_commands

    add_gateway_commands(add)

    from pulsegate.jobs.cli.up import add_up_command  # `pulsegate up` (production: migrate + worker + dashboard)

    add_up_command(add)
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
