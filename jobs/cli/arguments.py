"""Argument types shared by the command line's subcommands, and the signature they register themselves with."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

#: ``build_parser``'s helper each command module registers its sub-command with: name, handler, help → its parser.
AddCommand = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def port_number(value: str) -> int:
    """A TCP port (0 = any free one), or a usage error naming the value."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0–65535, got {port}")
    return port


#: The dashboard's port when neither ``--port`` nor ``$PORT`` names one.
DEFAULT_DASHBOARD_PORT = 8501


def add_dashboard_address(parser: argparse.ArgumentParser, what: str, port_note: str = "") -> None:
    """``--host`` / ``--port`` for the dashboard, defaulting to ``$HOST`` / ``$PORT`` as a platform sets them. The
    ``$PORT`` default goes through :func:`port_number` like a typed value, so a bad one is a usage error naming it."""
    parser.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help=f"{what}address (default $HOST or 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=os.environ.get("PORT", str(DEFAULT_DASHBOARD_PORT)),
        help=f"{what}port (default $PORT or {DEFAULT_DASHBOARD_PORT}){port_note}",
    )
