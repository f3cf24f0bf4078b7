"""Rate limits: the GCRA model, its interface, and the in-memory backend (a Redis backend implements the same)."""

from core.limits import gcra
from core.limits.base import Demand, LimitSpec, LimitState, RateLimiter
from core.limits.memory import MemoryRateLimiter

__all__ = ["Demand", "LimitSpec", "LimitState", "MemoryRateLimiter", "RateLimiter", "gcra"]
