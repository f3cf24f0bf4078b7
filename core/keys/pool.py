"""Which key serves the next attempt.

Healthy keys that are not cooling down share the load: least in flight first, ties in round-robin order. When
every usable key is unhealthy the least-used one is tried (the original spec's rule); when every key cools down the
one that comes back first is named with its wait; when every key is disabled there is no usable key at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.keys.health import HealthPolicy, KeyHealth, KeyStatus
from pulsegate.core.provider import Provider


@dataclass(frozen=True, slots=True)
class KeyChoice:
    key: ApiKey
    wait_s: float = 0.0  # > 0 when every usable key cools down: the earliest return


class KeyPool:
    def __init__(
        self,
        provider: Provider,
        keys: Iterable[ApiKey],
        clock: Clock = SYSTEM_CLOCK,
        policy: HealthPolicy | None = None,
    ) -> None:
        self.provider = provider
        self.keys: tuple[ApiKey, ...] = tuple(keys)
        self.clock = clock
        self.policy = policy or HealthPolicy()
        self.health: dict[str, KeyHealth] = {key.fingerprint: KeyHealth(self.policy) for key in self.keys}
        self._by_label = {key.label: key for key in self.keys}
        self._next = 0

    def __len__(self) -> int:
        return len(self.keys)

    def by_label(self, label: str) -> ApiKey | None:
        return self._by_label.get(label)

    def state(self, key: ApiKey) -> KeyHealth:
        return self.health[key.fingerprint]

    def choose(self, exclude: Collection[str] = ()) -> KeyChoice | None:
        """The key for the next attempt, or ``None`` when no key outside ``exclude`` (fingerprints) is usable."""
        now = self.clock.monotonic()
        count = len(self.keys)
        ready: list[tuple[int, int, ApiKey]] = []
        unhealthy: list[ApiKey] = []
        cooling: list[ApiKey] = []
        for offset in range(count):
            index = (self._next + offset) % count
            key = self.keys[index]
            if key.fingerprint in exclude:
                continue
            health = self.health[key.fingerprint]
            status = health.status(now)
            if status is KeyStatus.DISABLED:
                continue
            if status is KeyStatus.COOLDOWN:
                cooling.append(key)
            elif status is KeyStatus.UNHEALTHY:
                unhealthy.append(key)
            else:
                ready.append((health.in_flight, offset, key))
        if ready:
            _, offset, key = min(ready, key=lambda item: (item[0], item[1]))
            self._next = (self._next + offset + 1) % count
            return KeyChoice(key)
        if unhealthy:
            return KeyChoice(min(unhealthy, key=lambda k: self.health[k.fingerprint].requests))
        if cooling:
            key = min(cooling, key=lambda k: self.health[k.fingerprint].cooldown_until)
            return KeyChoice(key, self.health[key.fingerprint].cooldown_remaining(now))
        return None

    def has_usable(self, exclude: Collection[str] = ()) -> bool:
        """Whether :meth:`choose` would name a key, without moving the round-robin cursor."""
        now = self.clock.monotonic()
        return any(
            key.fingerprint not in exclude and self.health[key.fingerprint].status(now) is not KeyStatus.DISABLED
            for key in self.keys
        )

    def why_unusable(self) -> dict[str, str]:
        """Per key label, why it is out — for the ``no_usable_key`` error message."""
        now = self.clock.monotonic()
        reasons: dict[str, str] = {}
        for key in self.keys:
            health = self.health[key.fingerprint]
            status = health.status(now)
            if status is KeyStatus.DISABLED:
                reasons[key.label] = f"disabled ({health.disabled_reason})"
            elif status is KeyStatus.COOLDOWN:
                reasons[key.label] = f"cooling down for {health.cooldown_remaining(now):.1f} s"
        return reasons

    def snapshot(self) -> list[dict[str, object]]:
        now = self.clock.monotonic()
        rows: list[dict[str, object]] = []
        for key in self.keys:
            health = self.health[key.fingerprint]
            rows.append(
                {
                    "label": key.label,
                    "masked": key.masked,
                    "fingerprint": key.fingerprint,
                    "status": health.status(now).value,
                    "score": health.score(now),
                    "cooldown_remaining_s": round(health.cooldown_remaining(now), 3),
                    "consecutive_failures": health.consecutive_failures,
                    "disabled_reason": health.disabled_reason,
                    "requests": health.requests,
                    "in_flight": health.in_flight,
                }
            )
        return rows
