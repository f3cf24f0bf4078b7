"""Argument types shared by the command line's subcommands, and the signature they register themselves with."""

from __future__ import annotations

import argparse
import ipaddress
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


def is_loopback(host: str) -> bool:
    """Whether a ``--host`` value only listens on this machine (the dashboard needs a password otherwise)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
