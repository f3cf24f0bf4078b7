"""The election loop: try or renew the lease every third of it, and never lead past what was confirmed.

Timeline of a leader whose store stops answering (lease L, last confirmed renewal at t):

* t + L/3: the renewal fails (error or no answer in time) — still leading, the lease runs until t + L;
* t + 2L/3: still no confirmed renewal — it stops leading: jobs are removed and running ones cancelled;
* t + L: the lease expires; only now may a standby take it (on SQLite; on PostgreSQL the server frees the lock
  even later, see :mod:`pulsegate.jobs.service.leadership.postgres`).

So a leader that cannot renew has stopped a third of a lease before anyone else can start: no split brain. A
dead leader's lease is taken by a standby at most ``L + L/3`` after its last renewal — within two lease periods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.errors import one_line_reason
from pulsegate.jobs.service.leadership.base import LeaderInfo, Leadership

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None]]


def _reason(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else one_line_reason(exc, limit=200)


class Election:
    """Runs one worker's side of the election; ``on_elected`` / ``on_demoted`` start and stop its jobs,
    ``on_tick`` runs after every round (the worker reads the jobs' last runs there)."""

    def __init__(
        self,
        leadership: Leadership,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_elected: Callback | None = None,
        on_demoted: Callback | None = None,
        on_tick: Callback | None = None,
    ) -> None:
        self.leadership = leadership
        self.clock = clock
        self.on_elected = on_elected
        self.on_demoted = on_demoted
        self.on_tick = on_tick
        self.lease_s = leadership.lease_s
        self.renew_every_s = self.lease_s / 3
        #: how long after its last confirmed renewal a leader keeps leading without a new one
        self.safe_for_s = self.lease_s * 2 / 3
        self.leader = LeaderInfo.none()
        self.failures = 0
        self.last_error: str | None = None
        self._leading = False
        self._confirmed_at = 0.0
        self._silent_reported: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def instance_id(self) -> str:
        return self.leadership.instance_id

    def is_leader(self) -> bool:
        """Leading, and within the time the last confirmed renewal covers (checked by every job before it runs)."""
        return self._leading and self.clock.monotonic() < self._confirmed_at + self.safe_for_s

    @property
    def role(self) -> str:
        return "leader" if self.is_leader() else "standby"

    async def tick(self) -> bool:
        """One round: acquire or renew, demote if the lease can no longer be vouched for, refresh who leads."""
        now = self.clock.now()
        started = self.clock.monotonic()
        # a leader waits no longer than its lease is vouched for; a standby no longer than a lease
        timeout = max(0.0, self._confirmed_at + self.safe_for_s - started) if self._leading else self.lease_s
        answer: bool | None
        try:
            answer = await asyncio.wait_for(self.leadership.acquire_or_renew(now), timeout)
        except Exception as exc:  # store down, locked, or too slow: we do not know, the deadline decides
            answer = None
            self.failures += 1
            self.last_error = _reason(exc)
        if answer:
            self.last_error = None
            self._confirmed_at = started
            if not self._leading:
                self._leading = True
                log.info("leader: %s now leads (lease %.0f s)", self.instance_id, self.lease_s)
                await self._call(self.on_elected, "on_elected")
        elif self._leading and (answer is False or self.clock.monotonic() >= self._confirmed_at + self.safe_for_s):
            why = "another worker holds the lease" if answer is False else f"cannot renew: {self.last_error}"
            await self.demote(why)
        elif answer is None:
            log.warning("leader election: %s (will retry in %.1f s)", self.last_error, self.renew_every_s)
        await self._watch()
        await self._call(self.on_tick, "on_tick")
        return self._leading

    async def demote(self, why: str) -> None:
        """Stop leading (jobs stop through ``on_demoted``); the lease is left to expire or to be taken."""
        if not self._leading:
            return
        self._leading = False
        log.warning("leader: %s stops leading: %s", self.instance_id, why)
        await self._call(self.on_demoted, "on_demoted")

    async def _watch(self) -> None:
        try:
            self.leader = await asyncio.wait_for(self.leadership.holder(self.clock.now()), self.lease_s)
        except Exception as exc:
            log.debug("could not read the leader's lease: %s", exc)
            return
        leader = self.leader
        if leader.silent and leader.holder != self.instance_id:
            if self._silent_reported != leader.holder:
                self._silent_reported = leader.holder
                log.warning(
                    "leader %s is silent: its lease expired at %s without renewal",
                    leader.holder,
                    leader.expires_at.isoformat() if leader.expires_at else "?",
                )
        else:
            self._silent_reported = None

    async def _call(self, callback: Callback | None, name: str) -> None:
        if callback is None:
            return
        try:
            await callback()
        except Exception:
            log.exception("leader election: %s failed", name)

    # --- the loop ----------------------------------------------------------------------------------------------

    async def run(self) -> None:
        while not self._stopping:
            await self.tick()
            await self.clock.sleep(self.renew_every_s)

    def start(self) -> asyncio.Task[None]:
        self._stopping = False
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="pulsegate-election")
        return self._task

    async def stop(self) -> None:
        """Stop trying and renewing (leadership itself is kept until :meth:`resign` or expiry)."""
        self._stopping = True
        task, self._task = self._task, None
        # Python 3.11's wait_for can swallow a cancel that lands as its inner call completes (fixed in 3.12), so
        # one cancel may be lost: the flag ends the loop, and the cancel is repeated until the task is done.
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            log.debug("election loop ended with: %s", task.exception())

    async def resign(self, timeout_s: float = 5.0) -> None:
        """Shutdown: give the lease back so a standby takes over at its next try; then free connections."""
        self._leading = False
        try:
            await asyncio.wait_for(self.leadership.release(self.clock.now()), timeout_s)
        except Exception as exc:
            log.warning("could not release leadership (a standby takes over when it expires): %s", _reason(exc))
        try:
            await asyncio.wait_for(self.leadership.close(), timeout_s)
        except Exception as exc:
            log.debug("leadership close: %s", exc)
