"""``pulsegate alert silence add|list|expire``: mute matching alerts for a while (they change state, unnotified)."""

from __future__ import annotations

import argparse
from typing import Any

from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.command_error import CommandError
from pulsegate.jobs.cli.migrated_store import migrated_store


def cmd_alert_silence(args: argparse.Namespace) -> int:
    """Add, list or expire silences (matching alerts change state but are not notified)."""
    import json
    from datetime import datetime, timedelta

    from pulsegate.core.alerts.rule_fields import parse_duration
    from pulsegate.core.alerts.silences import (
        MatcherError,
        SilenceError,
        create_silence,
        expire_silence,
        list_silences,
        parse_matchers,
    )
    from pulsegate.core.clock import SYSTEM_CLOCK

    now = SYSTEM_CLOCK.now()
    engine = migrated_store(load_settings())
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


def add_silence_commands(alert_commands: Any) -> None:
    """Register ``pulsegate alert silence …`` on ``alert_commands``, the ``alert`` group's sub-parsers."""
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
