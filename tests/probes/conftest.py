"""The client tests' emulator fixtures, re-exported for the probe tests, and helpers to read what probes left."""

from __future__ import annotations

from tests.client.conftest import emu, emulator_server, make_client

__all__ = ["emu", "emulator_server", "make_client"]
