"""The hardening tests' shared real-process run (see :mod:`tests.hardening.flow`)."""

from tests.hardening.flow import flow  # noqa: F401
