"""Hardening tests: the emulator and client fixtures of the client tests (the store fixtures come from
tests/conftest.py)."""

from tests.client.conftest import emu, emulator_server, make_client

__all__ = ["emu", "emulator_server", "make_client"]
