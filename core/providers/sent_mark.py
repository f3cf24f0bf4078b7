"""Whether an attempt's request has left the process — so a cancelled attempt gets a row exactly when the provider
saw (and may bill) it, and no row when it never left.

The SDKs give no such signal, so the HTTP client is asked: a request hook switches tracing on for every request, and
the transport's trace reports when the request headers have been handed to the socket
(``…send_request_headers.complete``). From there to the body's write there is no suspension point — the body goes
out in the same step — so a cancellation after that event leaves a whole request with the provider, and one before
it leaves none (a write may wait for a new connection to become writable *before* sending, which is why the event
that counts is the one after the headers' write, not the one before the body's). The attempt in flight is found
through a context variable that :func:`sending` sets around the SDK call — the hook and the trace run in the same
task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any


class SentMark:
    """``sent`` is None until the HTTP client takes the request (the SDK may still be building it, and may suspend
    doing so: the first call of an SDK client looks up platform details in a thread), False once the client is
    sending it, True once its headers are out. Only True counts as a request that left: an adapter whose HTTP
    client has no hook (a test double) never reports one."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent: bool | None = None

    @property
    def left(self) -> bool:
        return self.sent is True


_CURRENT: ContextVar[SentMark | None] = ContextVar("pulsegate_sent_mark", default=None)


@contextmanager
def sending() -> Iterator[SentMark]:
    """The mark of the attempt sent inside this block."""
    mark = SentMark()
    token = _CURRENT.set(mark)
    try:
        yield mark
    finally:
        _CURRENT.reset(token)


async def _trace_request(request: Any) -> None:
    mark = _CURRENT.get()
    if mark is None:
        return
    mark.sent = False
    extensions = dict(request.extensions)  # the transport hands this very dict to each phase's trace

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith("send_request_headers.complete"):
            mark.sent = True
            extensions.pop("trace", None)  # known now: the later phases of the request are not traced at all

    extensions["trace"] = trace
    request.extensions = extensions


def watch(http_client: Any) -> Any:
    """Install the request hook on an ``httpx``-style async client (idempotent); returns the client."""
    hooks = http_client.event_hooks
    requests = list(hooks.get("request", []))
    if _trace_request not in requests:
        http_client.event_hooks = {**hooks, "request": [*requests, _trace_request]}
    return http_client


def headers_sent() -> None:
    """Tell the attempt in flight (if any) that its request headers are out: for an HTTP client other than httpx
    (the gateway's), called from that client's own "request headers sent" trace hook."""
    mark = _CURRENT.get()
    if mark is not None:
        mark.sent = True
