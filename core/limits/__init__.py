"""Rate limits: the GCRA model, its interface, the in-memory backend and the Redis backend (imported on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pulsegate.core.limits import gcra
from pulsegate.core.limits.base import Demand, LimitSpec, LimitState, RateLimiter
from pulsegate.core.limits.memory import MemoryRateLimiter

if TYPE_CHECKING:
    from pulsegate.core.limits.redis import RedisRateLimiter

__all__ = ["Demand", "LimitSpec", "LimitState", "MemoryRateLimiter", "RateLimiter", "RedisRateLimiter", "gcra"]


def __getattr__(name: str) -> Any:
    """``RedisRateLimiter`` loads ``redis`` only when asked for: a process without Redis never imports it."""
    if name == "RedisRateLimiter":
        from pulsegate.core.limits.redis import RedisRateLimiter

        return RedisRateLimiter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
