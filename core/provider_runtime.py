"""Everything one provider needs on the call path, held together: keys, adapter, queue, breaker, limits.

Limit names in the limiter: ``<provider>:rpm`` / ``<provider>:tpm`` for the provider, and
``<provider>:key:<fingerprint>:rpm`` / ``:tpm`` for one key — configured, or learned from the provider's
rate-limit headers (adaptive pacing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pulsegate.core.admission import AdmissionQueue
from pulsegate.core.api_keys import ApiKey
from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.limits.base import Demand, LimitSpec
from pulsegate.core.limits.own_use import OwnUse
from pulsegate.core.limits.tuner import LimitTuner
from pulsegate.core.provider import Provider
from pulsegate.core.providers.base import ProviderAdapter
from pulsegate.core.providers.rate_limit_headers import Window


@dataclass(slots=True)
class KeyLimits:
    """One key's own limits: configured ones never change; learned ones follow the provider's headers."""

    rpm: LimitSpec | None = None
    tpm: LimitSpec | None = None
    learned: bool = False


def learned_spec(window: Window, period_s: float) -> LimitSpec:
    """The bucket the provider describes. Both providers state per-minute limits, so the period is ours; deriving
    it from ``reset`` would amplify that header's one-second rounding into a wildly wrong rate."""
    return LimitSpec(limit=float(window.limit), period_s=period_s)


@dataclass(slots=True)
class ProviderRuntime:
    provider: Provider
    pool: KeyPool
    adapter: ProviderAdapter
    queue: AdmissionQueue
    breaker: CircuitBreaker
    rpm: LimitSpec
    tpm: LimitSpec | None
    period_s: float
    key_limits: dict[str, KeyLimits] = field(default_factory=dict)
    tuner: LimitTuner | None = None  # self-tuning limits; rpm / tpm / key limits above are then ceilings
    own_use: OwnUse | None = None  # what this client sent per key lately (the remaining-quota rule's yardstick)
    rpm_key: str = field(init=False)
    tpm_key: str = field(init=False)

    def __post_init__(self) -> None:
        self.rpm_key = f"{self.provider.value}:rpm"
        self.tpm_key = f"{self.provider.value}:tpm"
        if self.tuner is not None:
            self.queue.respec = self.tuner.respec  # requests already waiting follow a tuned limit too
            self.queue.retune_at = self.tuner.next_step_at  # ... and look again when a lowered limit steps up

    def effective(self, name: str, ceiling: LimitSpec) -> LimitSpec:
        """The spec to charge ``name`` against now: ``ceiling`` as tuned (itself without a tuner)."""
        return ceiling if self.tuner is None else self.tuner.spec(name, ceiling)

    def provider_demands(self, tokens: int) -> list[Demand]:
        demands = [Demand(self.rpm_key, self.effective(self.rpm_key, self.rpm), 1.0)]
        if self.tpm is not None:
            demands.append(Demand(self.tpm_key, self.effective(self.tpm_key, self.tpm), float(tokens)))
        return demands

    def key_demands(self, key: ApiKey, tokens: int) -> list[Demand]:
        limits = self.key_limits.get(key.fingerprint)
        if limits is None:
            return []
        demands = []
        if limits.rpm is not None:
            name = self.key_limit_name(key, "rpm")
            demands.append(Demand(name, self.effective(name, limits.rpm), 1.0))
        if limits.tpm is not None:
            name = self.key_limit_name(key, "tpm")
            demands.append(Demand(name, self.effective(name, limits.tpm), float(tokens)))
        return demands

    def key_limit_name(self, key: ApiKey, kind: str) -> str:
        return f"{self.provider.value}:key:{key.fingerprint}:{kind}"
