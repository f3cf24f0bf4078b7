"""``pulsegate alert test`` and ``pulsegate alert rules``: send a test notification, check the rules in force.

``alert silence …`` is :mod:`pulsegate.jobs.cli.silence_commands`; this module registers the ``alert`` group and hands
it the ``silence`` sub-group.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.command_error import CommandError
from pulsegate.jobs.cli.migrated_store import migrated_store
from pulsegate.jobs.cli.silence_commands import add_silence_commands


def _quiet_delivery_logs(args: argparse.Namespace) -> None:
    if not args.verbose:  # the command prints each outcome itself
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("pulsegate.alerts.delivery").setLevel(logging.CRITICAL)


def cmd_alert_test(args: argparse.Namespace) -> int:
    """Send a test notification to every channel (or one): exit 0 if each was delivered, 1 if one failed."""
    import asyncio
    import json

    from pulsegate.core.alerts.config import load_alert_config
    from pulsegate.core.alerts.sample_alert import send_sample_alert

    _quiet_delivery_logs(args)
    settings = load_settings()
    config = load_alert_config(settings)
    if not config.channels:
        raise CommandError(
            "no alert channels are configured: set MONITORING_WEBHOOK_URL or add [[channels]] to ALERT_RULES_FILE"
        )
    if args.channel is not None and args.channel not in config.channel_names:
        known = ", ".join(config.channel_names)
        raise CommandError(f"no alert channel named {args.channel!r} (configured: {known})")
    engine = migrated_store(settings)
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

    from pulsegate.core.alerts.config import load_alert_config
    from pulsegate.core.alerts.rule_fields import format_duration
    from pulsegate.core.alerts.rules import describe_rule

    config = load_alert_config(load_settings())
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


def add_alert_commands(commands: Any) -> None:
    """Register ``pulsegate alert …`` on ``commands``, the top-level sub-parsers (a group has no handler of its own)."""
    alert = commands.add_parser("alert", help="alerting: test channels, check rules, silences")
    alert_commands = alert.add_subparsers(dest="alert_command", required=True, metavar="ALERT_COMMAND")
    alert_test = alert_commands.add_parser("test", help="send a test notification (exit 1 if one fails)")
    alert_test.set_defaults(handler=cmd_alert_test)
    alert_test.add_argument("--channel", metavar="NAME", help="only this channel (default: every channel)")
    alert_test.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    alert_rules = alert_commands.add_parser("rules", help="validate the alert config and print the rules in force")
    alert_rules.set_defaults(handler=cmd_alert_rules)
    alert_rules.add_argument("--json", action="store_true", help="print the configuration as JSON")
    add_silence_commands(alert_commands)
