"""One process alone: the in-process key pool and breaker are the whole truth; nothing to share."""

from __future__ import annotations

from typing import Any

from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.keys.pool import KeyPool


class LocalSharedState:
    def attach(self, provider: str, pool: KeyPool, breaker: CircuitBreaker) -> None:
        pass

    async def sync(self, provider: str) -> None:
        pass

    async def flush(self, provider: str) -> None:
        pass

    async def claim_trial(self, provider: str, ttl_s: float) -> bool:
        return True

    def status(self) -> dict[str, Any]:
        return {"backend": "local", "degraded": False}

    async def aclose(self) -> None:
        pass
