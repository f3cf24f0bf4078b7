"""Key health, cooldowns, disabled keys and the circuit breaker, shared by every process that uses one Redis.

``local`` keeps them in the process (one app server); ``redis`` shares them (several app servers), loaded on
first use so a process without Redis never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pulsegate.core.shared_state.base import SharedState
from pulsegate.core.shared_state.local import LocalSharedState

if TYPE_CHECKING:
    from pulsegate.core.shared_state.redis import RedisSharedState

__all__ = ["LocalSharedState", "RedisSharedState", "SharedState"]


def __getattr__(name: str) -> Any:
    if name == "RedisSharedState":
        from pulsegate.core.shared_state.redis import RedisSharedState

        return RedisSharedState
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
