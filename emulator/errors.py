"""Exceptions raised by the emulator's public API (kept apart so every module can import them)."""

from __future__ import annotations


class EmulatorError(Exception):
    """The emulator cannot start or run as asked (e.g. a non-loopback bind address)."""


class ScenarioError(EmulatorError):
    """A scenario is invalid; the message names the source, the field path and what was expected."""

    def __init__(self, message: str, field: str = "", source: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.source = source
