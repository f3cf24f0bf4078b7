"""Hardening tests: the emulator and client fixtures of the client tests (the store fixtures come from
tests/conftest.py) and the shared real-process run (see :mod:`tests.hardening.flow`)."""

from tests.client.conftest import emu, emulator_server, make_client
from tests.hardening.flow import flow

__all__ = ["emu", "emulator_server", "flow", "make_client"]
