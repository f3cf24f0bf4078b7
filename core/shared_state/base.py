"""The interface between the call path and a shared-state backend.

The call path keeps deciding with its in-process objects (:class:`~pulsegate.core.keys.pool.KeyPool`,
:class:`~pulsegate.core.breaker.CircuitBreaker`), which stay fast and synchronous; a backend makes them agree across
processes at three points of every attempt:

- :meth:`SharedState.sync` before a key is chosen: tell what this process learnt, take the common view (so a
  cooldown, a disabled key or an open breaker set by another process is obeyed on this process's next call);
- :meth:`SharedState.claim_trial` when the breaker is half-open: exactly one process in all sends the trial;
- :meth:`SharedState.flush` when an attempt settles and changed a decision (cooldown, disable, breaker open or
  close): published at once, not on this process's next call.

A backend never raises into a call: when it cannot reach its store, the process goes on with its local state.
"""

from __future__ import annotations

from typing import Any, Protocol

from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.keys.pool import KeyPool


class SharedState(Protocol):
    def attach(self, provider: str, pool: KeyPool, breaker: CircuitBreaker) -> None:
        """Share this provider's keys and breaker (called once per provider, before any call)."""
        ...

    async def sync(self, provider: str) -> None:
        """Publish what this process learnt about the provider's keys and breaker; adopt the common view."""
        ...

    async def flush(self, provider: str) -> None:
        """:meth:`sync`, when a decision taken here is not published yet; else nothing."""
        ...

    async def claim_trial(self, provider: str, ttl_s: float) -> bool:
        """Whether this process may send the half-open trial (``ttl_s``: how long the claim holds if the process
        dies with it). ``True`` when the store cannot be reached: the local breaker decides alone."""
        ...

    def status(self) -> dict[str, Any]:
        """For snapshots and the dashboard's banner: ``{"backend": …, "degraded": …}``."""
        ...

    async def aclose(self) -> None: ...
