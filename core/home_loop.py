"""``HomeLoop``: the event loop an :class:`~pulsegate.core.client.AIClient` runs on, and how work reaches it.

A client binds to the first loop it is used on (its home). Used on a new loop once the old one is gone (e.g. a
second ``asyncio.run``), it moves there and its instance rebuilds what was bound to the old loop. A call made from
a loop other than the running home is handed to the home loop; synchronous callers are served by the home loop
when it runs, else by a background loop on a daemon thread, started on first need.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class HomeLoop:
    """``bound(moved)`` runs (under the binding lock) each time the client binds to a loop; ``moved``: it had
    another one before."""

    def __init__(self, bound: Callable[[bool], None]) -> None:
        self._bound = bound
        self.loop: asyncio.AbstractEventLoop | None = None
        self._background: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
        self._lock = threading.Lock()
        self.closed = False

    def enter(self) -> asyncio.AbstractEventLoop | None:
        """Bind to the running loop; return another loop to hand the work to, or None to run it here."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.closed:
                raise RuntimeError("this AIClient is closed")
            if self.loop is loop:
                return None
            if self.loop is not None and self.loop.is_running() and not self.loop.is_closed():
                return self.loop
            moved = self.loop is not None
            self.loop = loop
            self._bound(moved)
            return None

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await ``coroutine`` on the home loop: here, or handed to the home loop running elsewhere."""
        try:
            home = self.enter()
        except BaseException:
            coroutine.close()
            raise
        if home is None:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, home))

    def enter_for_stream(self) -> None:
        """Streams run on the loop that iterates them: refuse one while the home loop runs elsewhere."""
        current = _running_loop()
        home = self.loop
        if home is not None and current is not None and home is not current and home.is_running():
            raise RuntimeError("stream_response must be used on the event loop this AIClient already runs on")
        if current is not None:
            self.enter()

    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to its end from synchronous code (never from inside a running loop)."""
        if _running_loop() is not None:
            coroutine.close()
            raise RuntimeError("generate_response_sync was called inside a running event loop: await generate_response")
        home = self.loop
        loop = home if home is not None and home.is_running() else self._background_loop()
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    def on_home(self, work: Callable[[], T]) -> T:
        """Run ``work`` on the home loop (from another thread: handed to it), else here."""
        home = self.loop
        if home is None or _running_loop() is home or not home.is_running():
            return work()

        async def on_home() -> T:
            return work()

        return asyncio.run_coroutine_threadsafe(on_home(), home).result(timeout=10)

    def close(self) -> bool:
        """Refuse further work; returns whether this call closed it (False: it was closed already)."""
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            return True

    def is_home_or_unbound(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether what the home loop owns can be awaited from ``loop``."""
        return self.loop in (None, loop)

    def run_to_end(self, closing: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``closing()`` from synchronous code on whichever loop can still run it."""
        if self.loop is not None and self.loop.is_running():
            asyncio.run_coroutine_threadsafe(closing(), self.loop).result(timeout=30)
        elif self._background is not None:
            asyncio.run_coroutine_threadsafe(closing(), self._background[0]).result(timeout=30)
        else:
            asyncio.run(closing())

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._background is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="pulsegate-client-loop", daemon=True)
                thread.start()
                self._background = (loop, thread)
            return self._background[0]

    def stop_background(self) -> None:
        """Stop the background loop, if one was started (joined unless called from its own thread)."""
        background = self._background
        if background is None:
            return
        loop, thread = background
        loop.call_soon_threadsafe(loop.stop)
        if threading.current_thread() is not thread:
            thread.join(timeout=5)
