"""The per-provider priority admission queue in front of the rate limiter.

Higher priority first, FIFO within a priority, strict head of line: only the head is tried against the limiter,
so a large token request is never starved by a stream of small ones behind it. Other processes sharing the limiter
(Redis) keep no such order with us: when the same head is refused for longer than 1.5 times the wait it was
first told, it *reserves* — it is charged at once, putting the limits into debt, and is sent when the debt is covered.
Everybody else, in every process, then waits behind it, so a large request is not starved by small ones elsewhere.

When nobody waits and the limiter has room, :meth:`AdmissionQueue.admit` admits inline with one ``try_acquire``
(the hot path of every call). Otherwise one dispatcher task per queue sleeps on the injectable clock until the head
fits — woken early when a new head arrives, the head leaves, a deadline falls due, or the queue is cleared.

Queue methods must be called from the event loop the queue's dispatcher runs on.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.errors import QueueClearedError, QueueFullError, QueueTimeoutError
from pulsegate.core.limits.base import Demand, RateLimiter

log = logging.getLogger(__name__)


#: A head refused this long, and for over RESERVE_AFTER × the wait it was first told, reserves (module docstring).
RESERVE_AFTER_MIN_S = 0.05
RESERVE_AFTER = 1.5


class _Reserved(float):
    """What the dispatcher hands a reserved waiter: the seconds until its charge is covered (it sleeps them)."""


class _Waiter:
    """One queued request; it is live while its future is not done."""

    __slots__ = ("deadline", "demands", "enqueued_at", "first_wait", "future", "priority", "refused_at", "seq")

    def __init__(
        self,
        demands: Sequence[Demand],
        priority: int,
        seq: int,
        enqueued_at: float,
        deadline: float | None,
        future: asyncio.Future[float],
    ) -> None:
        self.demands = demands
        self.priority = priority
        self.seq = seq
        self.enqueued_at = enqueued_at
        self.deadline = deadline
        self.future = future
        self.refused_at: float | None = None  # when it was first refused as head (reset when it stops being head)
        self.first_wait = 0.0


class AdmissionQueue:
    """One per provider: admits requests in priority order as the limiter allows."""

    def __init__(self, provider: str, limiter: RateLimiter, clock: Clock = SYSTEM_CLOCK, max_size: int = 1000) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must not be negative, got {max_size}")
        self.provider = provider
        self.max_size = max_size
        self._limiter = limiter
        self._clock = clock
        self._seq = itertools.count()
        self._live: dict[int, _Waiter] = {}  # insertion order = arrival order, so the first is the oldest
        self._by_priority: dict[int, int] = {}
        self._heap: list[tuple[int, int, _Waiter]] = []  # (-priority, seq): lazy deletion of dead entries
        self._deadlines: list[tuple[float, int, _Waiter]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._sleep_until: float | None = None
        self._trying: _Waiter | None = None  # the head the dispatcher is currently waiting for
        self._dirty = False  # poked while not asleep (e.g. during a Redis round trip): look again before sleeping
        #: Re-derives a waiter's demands before each try (self-tuning limits change specs while requests wait).
        self.respec: Callable[[Sequence[Demand]], Sequence[Demand]] | None = None
        #: When a lowered limit next steps up (monotonic), or None: a wait computed at the lowered rate ends then.
        self.retune_at: Callable[[], float | None] | None = None

    # --- the caller's side -----------------------------------------------------------------------------------

    async def admit(
        self, demands: Sequence[Demand], *, priority: int = 0, deadline: float | None = None, leave_early: bool = False
    ) -> float:
        """Wait until every demand fits and is charged; return the seconds waited on the queue's clock.

        ``deadline`` is a ``clock.monotonic()`` instant. Raises :class:`QueueFullError` when ``max_size`` requests
        already wait, :class:`QueueTimeoutError` when the deadline passes first, :class:`QueueClearedError` when
        :meth:`clear` is called. A cancelled caller leaves the queue (and gives back capacity charged for it).
        ``leave_early``: a request whose estimated admission (:meth:`estimate`) is not before its deadline is not
        queued at all: :class:`QueueTimeoutError` at once (a caller with somewhere else to go).
        """
        clock = self._clock
        known_wait: float | None = None
        if not self._live:
            known_wait = await self._limiter.try_acquire(demands)
            if known_wait == 0.0:
                return 0.0
        now = clock.monotonic()
        if len(self._live) >= self.max_size:
            raise QueueFullError(
                f"{self.provider} admission queue is full ({self.max_size} requests waiting)", provider=self.provider
            )
        if deadline is not None and deadline <= now:
            raise QueueTimeoutError(
                f"{self.provider} admission deadline passed before the request could be queued", provider=self.provider
            )
        if leave_early and deadline is not None:
            estimate = await self.estimate(demands, priority, known_wait)
            if now + estimate >= deadline:  # a waiter whose turn is its deadline times out (see _expire)
                raise QueueTimeoutError(
                    f"{self.provider} admission estimated in {estimate:.1f} s; this request may wait "
                    f"{deadline - now:.1f} s",
                    provider=self.provider,
                )
        self._ensure_dispatcher()
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(demands, priority, next(self._seq), now, deadline, future)
        self._enqueue(waiter)
        try:
            waited = await future
            if isinstance(waited, _Reserved):
                await clock.sleep(waited)  # charged already: sent once the debt is covered
                waited = clock.monotonic() - now
            return waited
        except asyncio.CancelledError:
            if future.cancelled():
                self._leave(waiter)
            elif future.exception() is None:  # admitted (or reserved), but the caller is gone before using it
                await self._refund(demands)
            raise

    async def estimate(self, demands: Sequence[Demand], priority: int, own_wait: float | None = None) -> float:
        """Seconds until a request queued now at ``priority`` would be admitted: its queue position over the
        effective rate — the wait the limiter states for its own demands (``own_wait`` when already known), plus,
        for each request ahead of it (same or higher priority), the time its limits take to refill one such
        request. Requests arriving later at a higher priority, other processes and changing limits can move it."""
        ahead = sum(count for level, count in self._by_priority.items() if level >= priority)
        if own_wait is None:
            own_wait = await self._limiter.wait_time(demands)
        each = max((min(d.cost, d.spec.burst) * d.spec.interval_s for d in demands), default=0.0)
        return own_wait + ahead * each

    def clear(self, reason: str = "the queue was cleared by an operator") -> int:
        """Fail every waiter with :class:`QueueClearedError`; return how many there were."""
        waiters = list(self._live.values())
        self._heap.clear()
        self._deadlines.clear()
        cleared = 0
        for waiter in waiters:
            cleared += self._fail(waiter, QueueClearedError(f"{self.provider}: {reason}", provider=self.provider))
        self._poke()
        return cleared

    @property
    def depth(self) -> int:
        return len(self._live)

    @property
    def oldest_wait_s(self) -> float | None:
        """How long the longest-waiting request has waited, or ``None`` when the queue is empty."""
        for waiter in self._live.values():
            return max(0.0, self._clock.monotonic() - waiter.enqueued_at)
        return None

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state for heartbeats and health: priorities are string keys, highest first."""
        return {
            "provider": self.provider,
            "depth": self.depth,
            "max_size": self.max_size,
            "oldest_wait_s": self.oldest_wait_s,
            "by_priority": {str(p): n for p, n in sorted(self._by_priority.items(), reverse=True)},
        }

    # --- bookkeeping -----------------------------------------------------------------------------------------

    def _enqueue(self, waiter: _Waiter) -> None:
        self._live[waiter.seq] = waiter
        self._by_priority[waiter.priority] = self._by_priority.get(waiter.priority, 0) + 1
        heapq.heappush(self._heap, (-waiter.priority, waiter.seq, waiter))
        trying = self._trying
        new_head = trying is None or (-waiter.priority, waiter.seq) < (-trying.priority, trying.seq)
        if waiter.deadline is not None:
            heapq.heappush(self._deadlines, (waiter.deadline, waiter.seq, waiter))
        if new_head or (
            waiter.deadline is not None and (self._sleep_until is None or waiter.deadline < self._sleep_until)
        ):
            self._poke()

    def _forget(self, waiter: _Waiter) -> bool:
        """Drop a waiter from the live set (its heap entries die lazily); ``False`` if it was already gone."""
        if self._live.pop(waiter.seq, None) is None:
            return False
        left = self._by_priority[waiter.priority] - 1
        if left:
            self._by_priority[waiter.priority] = left
        else:
            del self._by_priority[waiter.priority]
        return True

    def _fail(self, waiter: _Waiter, exc: BaseException) -> bool:
        """Forget a waiter and raise ``exc`` in its caller; ``False`` if it had already gone (e.g. just cancelled)."""
        if self._forget(waiter) and not waiter.future.done():
            waiter.future.set_exception(exc)
            return True
        return False

    def _leave(self, waiter: _Waiter) -> None:
        if self._forget(waiter) and (waiter is self._trying or not self._live):
            self._poke()

    def _head(self) -> _Waiter | None:
        heap = self._heap
        while heap:
            waiter = heap[0][2]
            if waiter.seq in self._live:
                if not waiter.future.done():
                    return waiter
                self._forget(waiter)  # cancelled; its caller has not run its cleanup yet
            heapq.heappop(heap)
        return None

    def _expire(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, waiter = heapq.heappop(deadlines)
            waited = now - waiter.enqueued_at
            message = (
                f"{self.provider} admission timed out after {waited:.3f}s in the queue (priority {waiter.priority})"
            )
            self._fail(waiter, QueueTimeoutError(message, provider=self.provider))

    def _next_deadline(self) -> float | None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][2].seq not in self._live:
            heapq.heappop(deadlines)
        return deadlines[0][0] if deadlines else None

    async def _refund(self, demands: Sequence[Demand]) -> None:
        for demand in demands:
            await self._limiter.refund(demand.key, demand.spec, demand.cost)

    # --- the dispatcher --------------------------------------------------------------------------------------

    def _ensure_dispatcher(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if task is not None and not task.done():
            if task.get_loop() is loop:
                return
            if not task.get_loop().is_closed():
                raise RuntimeError(f"{self.provider} admission queue is bound to another running event loop")
            # the old loop is gone, and with it every caller that waited on it
            self._live.clear()
            self._by_priority.clear()
            self._heap.clear()
            self._deadlines.clear()
            self._wake = None
        self._task = loop.create_task(self._dispatch(), name=f"pulsegate-admission-{self.provider}")

    def _poke(self) -> None:
        """Wake the dispatcher so it looks at the queue again."""
        self._dirty = True
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _dispatch(self) -> None:
        try:
            while True:
                self._dirty = False
                self._expire(self._clock.monotonic())
                head = self._head()
                if head is None:
                    return
                if self._trying is not head and self._trying is not None:
                    self._trying.refused_at = None  # overtaken by a higher priority here: that is not starvation
                self._trying = head
                if self.respec is not None:
                    head.demands = self.respec(head.demands)
                try:
                    wait = await self._limiter.try_acquire(head.demands)
                    now = self._clock.monotonic()
                    if wait > 0.0 and self._should_reserve(head, now, wait):
                        await self._limiter.consume(head.demands)
                        wait = _Reserved(wait)
                except Exception as exc:  # e.g. the shared limiter's server is unreachable: the head learns why
                    self._fail(head, exc)
                    continue
                if wait == 0.0 or isinstance(wait, _Reserved):
                    if self._forget(head) and not head.future.done():
                        head.future.set_result(wait or now - head.enqueued_at)
                    else:  # the head left (cancelled) before it could be told: its capacity goes back
                        await self._refund(head.demands)
                    continue
                deadline = self._next_deadline()
                if deadline is not None and deadline - now < wait:
                    wait = deadline - now
                retune = self.retune_at() if self.retune_at is not None else None
                if retune is not None and now < retune < now + wait:
                    wait = retune - now
                if not self._dirty:
                    await self._sleep(now, wait)
        except Exception as exc:  # a bug must not leave callers waiting forever
            log.exception("%s admission dispatcher failed; failing every waiter", self.provider)
            for waiter in list(self._live.values()):
                self._fail(waiter, exc)
        finally:
            self._trying = None
            if self._task is asyncio.current_task():
                self._task = None

    def _should_reserve(self, head: _Waiter, now: float, wait: float) -> bool:
        """Refused again, for over 1.5 × its first wait: capacity it waited for went elsewhere (another process).
        Not when the debt would outlast its deadline: it could not be sent in time anyway."""
        if head.refused_at is None:
            head.refused_at, head.first_wait = now, wait
            return False
        refused_for = now - head.refused_at
        if refused_for < RESERVE_AFTER_MIN_S or refused_for <= RESERVE_AFTER * head.first_wait:
            return False
        return head.deadline is None or now + wait < head.deadline

    async def _sleep(self, now: float, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wake = wake
        self._sleep_until = now + seconds
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        sleeper.add_done_callback(functools.partial(_resolve, wake))
        try:
            await wake
        finally:
            sleeper.cancel()
            self._wake = None
            self._sleep_until = None


def _resolve(wake: asyncio.Future[None], _: object) -> None:
    if not wake.done():
        wake.set_result(None)
