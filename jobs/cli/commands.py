"""The ``pulsegate`` command.

Every sub-command turns a known failure (bad settings, unreachable database, bad scenario) into one clear message
on stderr and exit status 2 — never a traceback. This is the one place that may import ``emulator`` (lazily).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import PulsegateError
from core.settings import Settings, load_settings
from jobs.cli.arguments import is_loopback, port_number

if TYPE_CHECKING:
    from core.ops.probe import ProbeResult, ProbeTarget

EXIT_USAGE = 2
#: ``pulsegate --help`` shows these as they are: plain text, no docstring markup.
DESCRIPTION = (
    "Pulsegate keeps a Python app's Anthropic and OpenAI calls alive under load, and shows live how they are doing."
)
EPILOG = "Run 'pulsegate COMMAND --help' for a command's options."
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


def cmd_emulator(args: argparse.Namespace) -> int:
    from emulator import EmulatorError, ScenarioError, load_scenario, serve

    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        serve(host=args.host, port=args.port, scenario=scenario)
    except (EmulatorError, ScenarioError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Everything on loopback with fake keys: emulator, worker, traffic, webhook sink, dashboard (jobs/cli/demo/)."""
    from jobs.cli.demo.orchestrator import DemoOptions, run_demo
    from jobs.cli.demo.scenario import MIN_CYCLE_S
    from jobs.cli.demo.setup import make_plan

    if args.cycle_s < MIN_CYCLE_S:
        raise CommandError(f"--cycle-s: the cycle must last at least {MIN_CYCLE_S:g} s, got {args.cycle_s:g}")
    if args.rate <= 0:
        raise CommandError(f"--rate: expected a positive number of calls per second, got {args.rate:g}")
    ports = {"dashboard": args.port, "worker": args.worker_port, "emulator": args.emulator_port, "sink": args.sink_port}
    plan = make_plan(Path(args.dir), cycle_s=args.cycle_s, rate=args.rate, ports=ports, database_url=args.database_url)
    return run_demo(plan, DemoOptions(open_browser=not args.no_browser, verbose=args.verbose))


def cmd_worker(args: argparse.Namespace) -> int:
    """Scheduler, leader election and the HTTP API until SIGTERM/SIGINT (see jobs/service/worker.py)."""
    from jobs.service.worker_process import run_worker

    if not args.verbose:  # one line per job run and per request would bury what matters; the worker itself
        for name in ("httpx2", "httpx", "uvicorn"):  # logs missed and failed runs
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return run_worker(_settings(), host=args.host, port=args.port)


def cmd_probe(args: argparse.Namespace) -> int:
    """Probe keys now, in this process: a result table; exit 0 if every probe passed, 1 if one failed."""
    import asyncio
    import json

    from core.ops.probe import format_probe_table, probe_targets

    if not args.verbose:
        logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request would bury the table
    settings = _settings()
    targets = probe_targets(settings, provider=args.provider, key_label=args.key, model=args.model)
    if not targets:
        raise CommandError("no API keys are configured: set ANTHROPIC_API_KEY and/or OPENAI_API_KEY")
    results, restored = asyncio.run(_probe_now(settings, targets))
    if args.json:
        print(json.dumps({"results": [r.to_json() for r in results], "commands": restored}, indent=2))
    else:
        print(format_probe_table(results))
        for line in restored:
            print(f"{line['provider']} key {line['key_label']!r}: {line['command']} issued (command {line['id']})")
    return 0 if all(r.ok for r in results) else 1


async def _probe_now(settings: Settings, targets: list[ProbeTarget]) -> tuple[list[ProbeResult], list[dict[str, Any]]]:
    """Run the probes on a client recording to DATABASE_URL; a key found working is returned to service."""
    from core.client import AIClient
    from core.ops.control import command_status
    from core.ops.probe import run_probes
    from core.ops.probe_history import restore_recovered_keys
    from core.store import store_status

    client = AIClient.from_env(settings=settings, heartbeat=False)  # a one-shot process is no instance to watch
    try:
        results = await run_probes(client.probe, targets, concurrency=settings.probe_concurrency)
    finally:
        await client.aclose()
    engine = client.recorder.engine  # type: ignore[attr-defined]
    restored: list[dict[str, Any]] = []
    if store_status(engine).revision is not None:
        now = client.clock.now()
        ids = restore_recovered_keys(engine, results, now, heartbeat_interval_s=settings.heartbeat_interval_s)
        for command_id in ids:
            status = command_status(engine, command_id)
            restored.append({k: status[k] for k in ("id", "command", "provider", "key_label")})
    engine.dispose()
    return results, restored


def cmd_dashboard(args: argparse.Namespace) -> int:
    import dashboard

    if not is_loopback(args.host) and _settings().dashboard_password is None:
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
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--server.fileWatcherType",
        "none",
    ]
    # exec, not a child process: SIGTERM from honcho / a test reaches Streamlit itself instead of orphaning it
    sys.stdout.flush()
    os.execv(sys.executable, command)  # noqa: S606 — our own interpreter and script, no shell


# --- pulsegate alert … ---------------------------------------------------------------------------------------


def _alert_store(settings: Settings) -> Any:
    """An engine on a reachable, migrated store, or one CommandError saying what to do."""
    from core.store import create_store_engine, store_status

    engine = create_store_engine(settings.database_url)
    status = store_status(engine)
    if not status.reachable:
        engine.dispose()
        raise CommandError(status.problem or f"cannot reach {status.description}")
    if status.revision is None:
        engine.dispose()
        raise CommandError(f"{status.description} has no tables yet: run `pulsegate migrate` first")
    return engine


def _quiet_delivery_logs(args: argparse.Namespace) -> None:
    if not args.verbose:  # the command prints each outcome itself
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("pulsegate.alerts.delivery").setLevel(logging.CRITICAL)


def cmd_alert_test(args: argparse.Namespace) -> int:
    """Send a test notification to every channel (or one): exit 0 if each was delivered, 1 if one failed."""
    import asyncio
    import json

    from core.alerts.config import load_alert_config
    from core.alerts.sample_alert import send_sample_alert

    _quiet_delivery_logs(args)
    settings = _settings()
    config = load_alert_config(settings)
    if not config.channels:
        raise CommandError(
            "no alert channels are configured: set MONITORING_WEBHOOK_URL or add [[channels]] to ALERT_RULES_FILE"
        )
    if args.channel is not None and args.channel not in config.channel_names:
        known = ", ".join(config.channel_names)
        raise CommandError(f"no alert channel named {args.channel!r} (configured: {known})")
    engine = _alert_store(settings)
    try:
        outcomes = asyncio.run(
            send_sample_alert(engine, config.channels, channel=args.channel, dashboard_url=settings.dashboard_url)
        )
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([o.to_json() for o in outcomes], indent=2))
    else:
        width = max(len(o.channel) for o in outcomes)
        for o in outcomes:
            result = f"delivered (HTTP {o.status_code})" if o.delivered else f"FAILED: {o.error}"
            print(f"{o.channel:<{width}}  {o.format:<8} {o.masked_url}  {result}")
        print(f"{sum(o.delivered for o in outcomes)}/{len(outcomes)} delivered")
    return 0 if all(o.delivered for o in outcomes) else 1


def cmd_alert_rules(args: argparse.Namespace) -> int:
    """Validate the alert configuration and print the rules, channels and timers in force (exit 2 if invalid)."""
    import json

    from core.alerts.config import load_alert_config
    from core.alerts.rule_fields import format_duration
    from core.alerts.rules import describe_rule

    config = load_alert_config(_settings())
    if args.json:
        shown = {
            "source": config.source,
            "group_wait_s": config.group_wait_s,
            "repeat_interval_s": config.repeat_interval_s,
            "rules": [describe_rule(r) for r in config.rules],
            "disabled_rules": list(config.disabled_rules),
            "channels": [
                {"name": c.name, "format": c.format, "url": c.masked_url, "severities": sorted(c.severities)}
                for c in config.channels
            ],
        }
        print(json.dumps(shown, indent=2))
        return 0
    print(f"alert rules from {config.source}: {len(config.rules)} enabled, {len(config.disabled_rules)} disabled")
    header = ("rule", "kind", "severity", "threshold", "resolves", "window", "for", "keep", "min", "scope")
    rows = [header]
    for r in config.rules:
        threshold = "-" if r.threshold is None else f"{r.threshold:g} {r.spec.unit}".strip()
        resolves = "-" if r.resolve_threshold is None else f"{r.resolve_threshold:g} {r.spec.unit}".strip()
        rows.append(
            (
                r.id,
                r.kind,
                r.severity,
                threshold,
                resolves,
                format_duration(r.window_s),
                format_duration(r.for_s),
                format_duration(r.keep_firing_for_s),
                str(r.min_sample),
                r.scope + (" (inhibits per-key)" if r.inhibits else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if config.disabled_rules:
        print(f"disabled: {', '.join(config.disabled_rules)}")
    print(
        f"group wait {format_duration(config.group_wait_s)}, "
        f"repeat interval {format_duration(config.repeat_interval_s)}"
    )
    if not config.channels:
        print("channels: none (set MONITORING_WEBHOOK_URL or add [[channels]]): alerts are recorded, not sent")
    for c in config.channels:
        print(f"channel {c.name}: {c.format} {c.masked_url} severities={','.join(sorted(c.severities))}")
    return 0


def cmd_alert_silence(args: argparse.Namespace) -> int:
    """Add, list or expire silences (matching alerts change state but are not notified)."""
    import json
    from datetime import datetime, timedelta

    from core.alerts.rule_fields import parse_duration
    from core.alerts.silences import (
        MatcherError,
        SilenceError,
        create_silence,
        expire_silence,
        list_silences,
        parse_matchers,
    )
    from core.clock import SYSTEM_CLOCK

    now = SYSTEM_CLOCK.now()
    engine = _alert_store(_settings())
    try:
        if args.silence_command == "add":
            try:
                matchers = parse_matchers(args.match)
            except MatcherError as exc:
                raise CommandError(f"--match {exc.part!r}: {exc.reason}") from None
            if (args.duration is None) == (args.until is None):
                raise CommandError("give how long the silence lasts: --for DURATION (e.g. 2h) or --until TIME")
            try:
                if args.duration is not None:
                    ends_at = now + timedelta(seconds=parse_duration(args.duration))
                else:
                    ends_at = datetime.fromisoformat(args.until)
                    if ends_at.tzinfo is None:
                        raise CommandError(f"--until {args.until!r}: add a timezone, e.g. 2026-12-01T18:00+00:00")
            except ValueError as exc:
                raise CommandError(f"--{'for' if args.duration else 'until'}: {exc}") from None
            try:
                silence_id = create_silence(
                    engine, matchers, ends_at=ends_at, created_by="cli", comment=args.comment, now=now
                )
            except SilenceError as exc:
                raise CommandError(str(exc)) from None
            shown = " ".join(f"{k}={v}" for k, v in matchers.items())
            print(f"silence {silence_id} added: {shown} until {ends_at.isoformat(timespec='seconds')}")
            return 0
        if args.silence_command == "expire":
            try:
                ended = expire_silence(engine, args.id, now)
            except KeyError:
                raise CommandError(f"no silence with id {args.id}") from None
            print(f"silence {args.id} {'expired' if ended else 'had already ended'}")
            return 0
        silences = list_silences(engine, now)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps([s.to_json(now) for s in silences], indent=2))
        return 0
    if not silences:
        print("no silences")
        return 0
    for s in silences:
        matchers = " ".join(f"{k}={v}" for k, v in s.matchers.items())
        comment = f"  # {s.comment}" if s.comment else ""
        until = (s.expired_at or s.ends_at).isoformat(timespec="seconds")
        print(f"{s.id:>4}  {s.state(now):<8} {matchers}  until {until}  by {s.created_by}{comment}")
    return 0


def _add_demo_command(add: Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]) -> None:
    from jobs.cli.demo.scenario import DEFAULT_CYCLE_S
    from jobs.cli.demo.setup import DEFAULT_DIR, DEFAULT_PORTS

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

    from jobs.cli.settings_command import cmd_settings

    add("settings", cmd_settings, "show the settings in force, secrets masked; warn when no provider key is set")

    emulator = add("emulator", cmd_emulator, "run the local Anthropic/OpenAI emulator (loopback only)")
    emulator.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    emulator.add_argument("--port", type=port_number, default=DEFAULT_EMULATOR_PORT, help="port (default 8700)")
    emulator.add_argument("--scenario", default=None, help="scenario file (TOML or JSON), see docs/emulator.md")

    _add_demo_command(add)

    worker = add("worker", cmd_worker, "run the background worker: scheduled jobs, leader election, HTTP API")
    worker.add_argument("--host", default=None, help="address to bind the API (default $WORKER_HOST or 127.0.0.1)")
    worker.add_argument("--port", type=port_number, default=None, help="API port (default $WORKER_PORT or 8600)")

    probe = add("probe", cmd_probe, "probe API keys now and print the results (exit 1 if one fails)")
    probe.add_argument("--provider", choices=("anthropic", "openai"), help="only this provider's keys")
    probe.add_argument("--key", metavar="LABEL", help="only the key with this label (e.g. Primary, 'Backup 1')")
    probe.add_argument("--model", help="probe on this model (default: ANTHROPIC_PROBE_MODEL / OPENAI_PROBE_MODEL)")
    probe.add_argument("--json", action="store_true", help="print the results as JSON")

    alert = commands.add_parser("alert", help="alerting: test channels, check rules, silences")
    alert_commands = alert.add_subparsers(dest="alert_command", required=True, metavar="ALERT_COMMAND")
    alert_test = alert_commands.add_parser("test", help="send a test notification (exit 1 if one fails)")
    alert_test.set_defaults(handler=cmd_alert_test)
    alert_test.add_argument("--channel", metavar="NAME", help="only this channel (default: every channel)")
    alert_test.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    alert_rules = alert_commands.add_parser("rules", help="validate the alert config and print the rules in force")
    alert_rules.set_defaults(handler=cmd_alert_rules)
    alert_rules.add_argument("--json", action="store_true", help="print the configuration as JSON")
    silence = alert_commands.add_parser("silence", help="add, list or expire silences")
    silence_commands = silence.add_subparsers(dest="silence_command", required=True, metavar="SILENCE_COMMAND")
    silence_add = silence_commands.add_parser("add", help="mute alerts matching every --match for a while")
    silence_add.add_argument(
        "--match", action="append", required=True, metavar="NAME=VALUE", help="label (or rule_id) to match"
    )
    silence_add.add_argument("--for", dest="duration", metavar="DURATION", help="how long, e.g. 30m, 2h, 1d")
    silence_add.add_argument("--until", metavar="TIME", help="end time, ISO-8601 with a timezone")
    silence_add.add_argument("--comment", help="why (shown in lists and on the dashboard)")
    silence_list = silence_commands.add_parser("list", help="active, pending and recently ended silences")
    silence_list.add_argument("--json", action="store_true", help="print the silences as JSON")
    silence_expire = silence_commands.add_parser("expire", help="end a silence now")
    silence_expire.add_argument("id", type=int, help="the silence's id (see 'pulsegate alert silence list')")
    silence.set_defaults(handler=cmd_alert_silence)

    dash = add("dashboard", cmd_dashboard, "run the Streamlit dashboard")
    dash.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help="address (default $HOST or 127.0.0.1)"
    )
    dash.add_argument(
        "--port",
        type=port_number,
        default=int(os.environ.get("PORT", DEFAULT_DASHBOARD_PORT)),
        help="port (default $PORT or 8501)",
    )
    from jobs.cli.up import add_up_command  # `pulsegate up` (production: migrate + worker + dashboard)

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
