"""Serving the worker's API on the worker's own event loop: the socket, and uvicorn without its signal handlers.

The worker binds the socket itself so a taken port is one clear :class:`WorkerError` (uvicorn would
``sys.exit``), and owns SIGTERM/SIGINT itself so its graceful stop runs before the process ends.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from pulsegate.jobs.service.worker_error import WorkerError


def bind_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound here so a taken port is one clear error (uvicorn would ``sys.exit``)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise WorkerError(f"WORKER_HOST / --host {host!r}: cannot resolve it ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise WorkerError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (WORKER_PORT / --port)") from None
    sock.set_inheritable(True)
    return sock


class QuietServer(uvicorn.Server):
    """uvicorn's server without its signal handling: the worker owns SIGTERM/SIGINT (uvicorn would re-raise them
    after its own shutdown and end the process before the worker's)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
