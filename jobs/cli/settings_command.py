"""``pulsegate settings``: the settings in force as two aligned columns, secrets masked.

A configuration without any provider key is valid (the demo and the emulator need none) but cannot send a call,
so the command says so on stderr — the listing itself stays on stdout for scripts. With ``REDIS_URL`` set, the line
after it says which kind of Redis answers there (``single`` / ``cluster``): the app detects it the same way, from
the server, so this is what the app servers will use (or why Redis cannot be reached from here).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from pulsegate.core.settings import Settings, load_settings
from pulsegate.jobs.cli.up import NO_KEY_MESSAGE

#: Spaces between the name column and the value column.
GAP = "  "


def format_settings(described: Mapping[str, object]) -> list[str]:
    """One line per setting, values aligned one gap past the longest name, whatever its length."""
    width = max((len(name) for name in described), default=0)
    return [f"{name:<{width}}{GAP}{value}" for name, value in described.items()]


def missing_keys_warning(settings: Settings) -> str | None:
    """The warning to print when no provider key is configured, else ``None``."""
    if settings.anthropic_keys or settings.openai_keys:
        return None
    return f"pulsegate settings: warning: {NO_KEY_MESSAGE}"


def with_redis_mode(described: Mapping[str, object], settings: Settings) -> dict[str, object]:
    """``described`` with ``REDIS mode`` right after ``REDIS_URL`` when one is set (the URL itself stays masked)."""
    shown: dict[str, object] = {}
    for name, value in described.items():
        shown[name] = value
        if name == "REDIS_URL" and settings.redis_url is not None:
            from pulsegate.core.redis_cluster import describe_mode

            shown["REDIS mode"] = describe_mode(settings.redis_url.get_secret_value())
    return shown


def cmd_settings(args: argparse.Namespace) -> int:
    settings = load_settings()
    print("\n".join(format_settings(with_redis_mode(settings.describe(), settings))))
    warning = missing_keys_warning(settings)
    if warning is not None:
        sys.stdout.flush()  # the listing first, then the warning, when both go to one terminal
        print(warning, file=sys.stderr)
    return 0
