"""The one error that stops a worker's start; its own module so the socket binding and the process entry point
(:mod:`pulsegate.jobs.service.worker_http`, :mod:`pulsegate.jobs.service.worker_process`) raise it without importing
each other."""

from __future__ import annotations

from pulsegate.core.errors import PulsegateError


class WorkerError(PulsegateError):
    """The worker cannot start as configured (address in use, store not migrated); one line, exit 2."""
