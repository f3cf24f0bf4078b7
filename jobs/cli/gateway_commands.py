"""``pulsegate gateway`` (serve the gateway) and ``pulsegate gateway-token create|list|revoke|update`` (its apps and
tokens). ``create`` prints the token alone on its last line, once: scripts take ``| tail -n1``.

The app's monthly budget is a column of the store already, but gets its flag only once the gateway enforces it: a
flag that is accepted and then ignored would say something untrue."""

from __future__ import annotations

import argparse
from typing import Any

from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.arguments import AddCommand, port_number
from pulsegate.jobs.cli.migrated_store import migrated_store


def cmd_gateway(args: argparse.Namespace) -> int:
    """Serve the gateway until SIGTERM/SIGINT."""
    from pulsegate.gateway.server import serve

    settings = load_settings()
    migrated_store(settings).dispose()  # one clear line if the store is not ready, before binding anything
    serve(settings, args.host or settings.gateway_host, args.port if args.port is not None else settings.gateway_port)
    return 0


def _optional(kind: type) -> Any:
    """A flag value that ``none`` clears (``--rpm none``: no app limit)."""

    def parse(value: str) -> Any:
        if value.strip().lower() == "none":
            return None
        if kind is bool:
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise argparse.ArgumentTypeError(f"expected true or false (or none), got {value!r}")
            return lowered == "true"
        try:
            return kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {(kind.__name__ == 'int' and 'a whole number') or 'a number'} (or none), got {value!r}"
            ) from None

    return parse


_SETTINGS = (
    ("--rpm", "rpm", int, "requests per minute across the app's tokens"),
    ("--tpm", "tpm", int, "tokens per minute across the app's tokens"),
    ("--priority", "priority", int, "default priority of the app's calls (0-10, default 5)"),
    ("--max-priority", "max_priority", int, "cap on the x-pulsegate-priority header (0-10)"),
    ("--fallback", "fallback", bool, "fall back to OpenAI on an Anthropic overload by default (true/false; true)"),
    ("--timeout", "timeout_s", float, "default deadline of a call in seconds (default 60)"),
)


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    changes = {field: getattr(args, field) for _, field, _, _ in _SETTINGS if getattr(args, field) is not _UNSET}
    if args.models is not _UNSET:
        changes["models"] = (
            None if args.models.strip().lower() == "none" else [m.strip() for m in args.models.split(",") if m.strip()]
        )
    return changes


_UNSET = object()


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def cmd_gateway_token(args: argparse.Namespace) -> int:
    from pulsegate.core.apps.store import create_token, list_tokens, revoke_token, update_app
    from pulsegate.core.clock import SYSTEM_CLOCK

    engine = migrated_store(load_settings())
    now = SYSTEM_CLOCK.now()
    try:
        if args.action == "create":
            app, token = create_token(engine, args.name, _changes(args), now)
            print(f"token created for app {app.name!r} (shown once; only its prefix {token[:12]} is kept readable):")
            print(token)
        elif args.action == "list":
            tokens = list_tokens(engine)
            if not tokens:
                print("no gateway tokens (create one with `pulsegate gateway-token create --name APP`)")
            for info in tokens:
                print(
                    f"{info.app:<24} {info.prefix:<13} created {_when(info.created_at)}  "
                    f"last used {_when(info.last_used_at)}  {info.state}"
                )
        elif args.action == "revoke":
            info = revoke_token(engine, args.prefix, now)
            print(f"token {info.prefix} of app {info.app!r} revoked at {_when(info.revoked_at)}")
        else:
            app = update_app(engine, args.name, _changes(args), now)
            shown = ", ".join(f"{field}={getattr(app, field)!r}" for _, field, _, _ in _SETTINGS)
            print(f"app {app.name!r} updated: {shown}, models={list(app.models) if app.models else None}")
    finally:
        engine.dispose()
    return 0


def _add_settings(parser: argparse.ArgumentParser) -> None:
    for flag, field, kind, text in _SETTINGS:
        parser.add_argument(flag, dest=field, type=_optional(kind), default=_UNSET, help=f"{text}; 'none' clears it")
    parser.add_argument(
        "--models", default=_UNSET, help="comma-separated models the app may call; 'none': any (the default)"
    )


def add_gateway_commands(add: AddCommand) -> None:
    gateway = add("gateway", cmd_gateway, "serve the OpenAI- and Anthropic-compatible gateway")
    gateway.add_argument("--host", default=None, help="address to bind (default: GATEWAY_HOST, 127.0.0.1)")
    gateway.add_argument("--port", type=port_number, default=None, help="port (default: GATEWAY_PORT, 8800)")

    tokens = add("gateway-token", cmd_gateway_token, "create, list, revoke gateway tokens; change an app's limits")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new token for an app (created if new); the token alone last")
    create.add_argument("--name", required=True, help="the app's name (1-64 letters, digits, '.', '_', '-')")
    _add_settings(create)
    actions.add_parser("list", help="every token: app, prefix, created, last used, state")
    revoke = actions.add_parser("revoke", help="stop accepting a token (every gateway within a second)")
    revoke.add_argument("prefix", help="the token's prefix, as 'pulsegate gateway-token list' shows it")
    update = actions.add_parser("update", help="change an app's limits and defaults")
    update.add_argument("name", help="the app's name")
    _add_settings(update)
