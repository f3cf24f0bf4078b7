"""``pulsegate settings``: the settings in force as two aligned columns, secrets masked.

A configuration without any provider key is valid (the demo and the emulator need none) but cannot send a call,
so the command says so on stderr — the listing itself stays on stdout for scripts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from core.settings import Settings, load_settings
from jobs.up import NO_KEY_MESSAGE

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


def cmd_settings(args: argparse.Namespace) -> int:
    settings = load_settings()
    print("\n".join(format_settings(settings.describe())))
    warning = missing_keys_warning(settings)
    if warning is not None:
        sys.stdout.flush()  # the listing first, then the warning, when both go to one terminal
        print(warning, file=sys.stderr)
    return 0
