"""HTTP/1.1 over a raw asyncio Protocol, parsed with httptools.

Why not a framework: we need to reset sockets, stall, truncate chunked bodies and close mid-stream on purpose, and
to do thousands of requests per second on one core. A Protocol gives both. Keep-alive and pipelined requests are
served in order; a reply with no delay is written synchronously (no task per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from typing import TYPE_CHECKING

import httptools

from pulsegate.emulator.plan import LAST_CHUNK, Reply, Request, encode_chunk, encode_head

if TYPE_CHECKING:
    from pulsegate.emulator.app import Emulator

_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, app: Emulator, connections: set[HttpProtocol]) -> None:
        self.app = app
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.pending: deque[Request] = deque()
        self.busy = False
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        self._writable: asyncio.Event | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._limit = 0

    # -- asyncio callbacks ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connections.discard(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self._writable is not None:
            self._writable.set()

    def pause_writing(self) -> None:
        self._writable = asyncio.Event()

    def resume_writing(self) -> None:
        if self._writable is not None:
            self._writable.set()
            self._writable = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if self.transport is not None and not self.closed:
                self.transport.write(_BAD_REQUEST)
                self.transport.close()

    # -- httptools callbacks --------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        path = self._url.split(b"?", 1)[0].decode("latin-1")
        self._limit = self.app.body_limit(path)

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self._limit:
            self._body.append(body)

    def on_message_complete(self) -> None:
        url = self._url.decode("latin-1")
        path, _, query = url.partition("?")
        request = Request(
            method=self.parser.get_method().decode("latin-1"),
            path=path,
            query=query,
            headers=self._headers,
            body=b"".join(self._body) if self._size <= self._limit else b"",
            body_size=self._size,
            keep_alive=self.parser.should_keep_alive(),
        )
        if self.busy:
            self.pending.append(request)
        else:
            self._dispatch(request)

    # -- replying -------------------------------------------------------------------------------------------
    def _dispatch(self, request: Request) -> None:
        while True:
            if self.closed or self.transport is None:
                return
            reply = self.app.handle(request)
            if not reply.immediate:
                self.busy = True
                self.task = asyncio.get_running_loop().create_task(self._run(reply, request.keep_alive))
                return
            self._write_now(reply, request.keep_alive)
            if not self.pending:
                return
            request = self.pending.popleft()

    def _write_now(self, reply: Reply, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None
        head = encode_head(reply, keep_alive)
        if reply.chunks is None:
            transport.write(head + reply.body)
        else:
            # A truncated stream still ends its chunked body cleanly: it only lacks the terminal events.
            transport.write(b"".join([head, *(encode_chunk(data) for _, data in reply.chunks), LAST_CHUNK]))
        if not keep_alive or reply.close:
            transport.close()
            self.closed = True

    async def _run(self, reply: Reply, keep_alive: bool) -> None:
        """Execute a reply that needs time: delays, stream pacing, stalls, resets."""
        try:
            if reply.delay > 0:
                await asyncio.sleep(reply.delay)
            if self.closed or self.transport is None:
                return
            if reply.reset:
                self._reset()
                return
            if reply.chunks is None:
                self._write_now(reply, keep_alive)
            else:
                await self._stream(reply, keep_alive)
        except asyncio.CancelledError:
            return
        finally:
            self.busy = False
            self.task = None
        if self.pending and not self.closed:
            self._dispatch(self.pending.popleft())

    async def _stream(self, reply: Reply, keep_alive: bool) -> None:
        transport = self.transport
        assert transport is not None and reply.chunks is not None
        transport.write(encode_head(reply, keep_alive))
        for delay, data in reply.chunks:
            if delay > 0:
                await asyncio.sleep(delay)
            if self.closed:
                return
            if self._writable is not None:
                await self._writable.wait()
            transport.write(encode_chunk(data))
        transport.write(LAST_CHUNK)
        if not keep_alive or reply.close:
            transport.close()
            self.closed = True

    def _reset(self) -> None:
        """Close with an RST (SO_LINGER 0) and no response: the SDKs raise APIConnectionError."""
        transport = self.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        self.closed = True

    def shutdown(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
