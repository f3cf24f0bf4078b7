"""The two values that cross the HTTP boundary: a parsed request and the reply plan the protocol executes.

Handlers never touch sockets; they return a `Reply` that says what to send and when (delays, stream chunks,
a reset, an early close). That keeps every fault expressible as data and the protocol small.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from http import HTTPStatus

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_REASONS[529] = "Site Overloaded"
_DATE_CACHE: list[object] = [0, b""]


@dataclass(slots=True)
class Request:
    """One HTTP request as read off the wire (header names lower-cased)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    body_size: int
    keep_alive: bool = True


@dataclass(slots=True)
class Reply:
    """What to send. `chunks` (delay before each, bytes) makes a chunked stream; otherwise `body` is sent whole."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: list[tuple[float, bytes]] | None = None
    delay: float = 0.0
    reset: bool = False
    close: bool = False
    fault: str | None = None

    @property
    def immediate(self) -> bool:
        """True when the whole reply can be written at once, with no task and no sleeping."""
        if self.delay > 0 or self.reset:
            return False
        if self.chunks is None:
            return True
        return all(d <= 0 for d, _ in self.chunks)


def http_date() -> bytes:
    """The `date` header value, formatted once per second."""
    now = int(time.time())
    if _DATE_CACHE[0] != now:
        _DATE_CACHE[0] = now
        _DATE_CACHE[1] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
    return _DATE_CACHE[1]  # type: ignore[return-value]


def encode_head(reply: Reply, keep_alive: bool) -> bytes:
    """Status line and headers; Content-Length for whole bodies, chunked transfer for streams."""
    reason = _REASONS.get(reply.status, "Unknown")
    lines = [f"HTTP/1.1 {reply.status} {reason}"]
    lines.extend(f"{k}: {v}" for k, v in reply.headers)
    if reply.chunks is None:
        lines.append(f"content-length: {len(reply.body)}")
    else:
        lines.append("transfer-encoding: chunked")
    if not keep_alive or reply.close:
        lines.append("connection: close")
    else:
        lines.append("connection: keep-alive")
    return ("\r\n".join(lines)).encode("latin-1") + b"\r\ndate: " + http_date() + b"\r\n\r\n"


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
