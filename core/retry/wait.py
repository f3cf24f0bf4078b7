"""How long to wait before the next attempt (tenacity's ``wait`` axis)."""

from __future__ import annotations

import random

from pulsegate.core.retry.state import RetryState


class WaitStrategy:
    def __call__(self, state: RetryState) -> float:
        raise NotImplementedError


class wait_exponential_full_jitter(WaitStrategy):
    """Uniform in [0, min(cap, base × 2^(n-1))] — full jitter spreads retries of many callers apart."""

    def __init__(self, base_s: float = 0.5, cap_s: float = 8.0, rng: random.Random | None = None) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self.rng = rng or random.Random()

    def __call__(self, state: RetryState) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** (state.attempts - 1))
        return self.rng.uniform(0, ceiling)


class wait_retry_after(WaitStrategy):
    """The provider's ``retry-after`` when it sent one (it knows best), else ``fallback``."""

    def __init__(self, fallback: WaitStrategy, max_s: float = 120.0) -> None:
        self.fallback = fallback
        self.max_s = max_s

    def __call__(self, state: RetryState) -> float:
        retry_after = state.error.retry_after
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_s)
        return self.fallback(state)
