"""Worker tests: the emulator fixtures of the client tests (the store fixtures come from tests/conftest.py)."""

from __future__ import annotations

from tests.client.conftest import emu, emulator_server, make_client

__all__ = ["emu", "emulator_server", "make_client"]
