"""A loopback TCP proxy in front of Redis that tests can stall, slow and release: an outage without stopping Redis."""

from __future__ import annotations

import asyncio
import contextlib


class StallingProxy:
    """A loopback TCP proxy to Redis that can stall (accept and read, never answer), hold every answer back for
    ``reply_delay_s`` (it then arrives late, on the same connection), and recover."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.stalled = False
        self.reply_delay_s = 0.0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers.append(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if self.stalled:
                        continue  # swallow: the client waits for an answer that never comes
                    if replies and self.reply_delay_s:
                        await asyncio.sleep(self.reply_delay_s)
                    dst.write(data)
                    await dst.drain()
            dst.close()

        for task in (pipe(reader, up_writer, replies=False), pipe(up_reader, writer, replies=True)):
            spawned = asyncio.ensure_future(task)
            self._tasks.add(spawned)
            spawned.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
