"""How long a call may wait in a provider's admission queue, and when it leaves the queue for its fallback instead.

A call without a fallback waits until its ``queue_timeout_s`` or its deadline, whichever comes first, and then fails
with ``queue_timeout``. A call that may fall back keeps ``FALLBACK_RESERVE_S`` of its deadline for the other
provider: it waits at most until that reserve begins (or its ``queue_timeout_s``), and does not queue at all when
its estimated admission (queue position over the effective rate, :meth:`AdmissionQueue.estimate`) lies past that
point — either way it leaves with :class:`LeftQueueForFallback` and the call runner moves it to the other provider.
When its deadline leaves less than the reserve, it waits like any call: a fallback would have no time to answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulsegate.core.admission import AdmissionQueue
from pulsegate.core.clock import Clock
from pulsegate.core.errors import QueueTimeoutError
from pulsegate.core.limits.base import Demand

DEFAULT_FALLBACK_RESERVE_S = 10.0
"""Seconds of a call's deadline kept for its fallback (``FALLBACK_RESERVE_S``)."""


class LeftQueueForFallback(QueueTimeoutError):
    """A call that may fall back left the primary provider's queue — its estimated admission lay past the time it
    may wait there, or it waited that long — with the reserve of its deadline still left for the other provider.
    Recorded as a ``queue_timeout`` row; raised to the caller only when the fallback cannot be tried."""


async def wait_in_queue(
    queue: AdmissionQueue,
    demands: Sequence[Demand],
    clock: Clock,
    *,
    priority: int,
    call_deadline: float,
    queue_timeout_s: float | None,
    fallback_reserve_s: float | None,
) -> float:
    """Admit ``demands`` through ``queue``; return the seconds waited. ``fallback_reserve_s`` is ``None`` for a call
    that cannot fall back. Raises the queue's errors, or :class:`LeftQueueForFallback`."""
    now = clock.monotonic()
    deadline = call_deadline if queue_timeout_s is None else min(call_deadline, now + queue_timeout_s)
    leave_at = call_deadline - fallback_reserve_s if fallback_reserve_s is not None else now
    if leave_at <= now:
        return await queue.admit(demands, priority=priority, deadline=deadline)
    try:
        return await queue.admit(demands, priority=priority, deadline=min(deadline, leave_at), leave_early=True)
    except QueueTimeoutError as exc:
        raise LeftQueueForFallback(
            f"{exc}; falling back with {call_deadline - clock.monotonic():.1f} s of the call's deadline left "
            f"(FALLBACK_RESERVE_S={fallback_reserve_s:g})",
            provider=queue.provider,
        ) from exc
