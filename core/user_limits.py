"""Per-user limits (``USER_RPM`` / ``USER_TPM``): each ``user_id`` gets its own bucket in the shared limiter.

A call with a ``user_id`` is charged one request and its token reservation (estimated input + ``max_tokens``)
against ``user:<id>:rpm`` / ``user:<id>:tpm`` before it enters the provider's queue. A user over the limit is
refused at once with :class:`~pulsegate.core.errors.UserRateLimitedError` — it never waits in the queue behind everybody
else. With ``HASH_USER_IDS`` set, the limiter keys carry the keyed hash, never the raw id, and messages do not name
the user. Calls without a ``user_id`` are not limited here.

Per-feature limits (``FEATURE_RPM`` / ``FEATURE_TPM``, on ``options.feature``) are the same thing with
``scope="feature"``: buckets ``feature:<tag>:rpm`` / ``:tpm``, never hashed (a feature tag is not personal data),
refused with the same ``user_rate_limited`` class — a limit the application sets on its own callers, not the
provider's — and a message naming the feature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pulsegate.core.limits.base import Demand, LimitSpec, RateLimiter
from pulsegate.core.user_ids import hash_user_id


@dataclass(slots=True)
class UserLimits:
    """The configured per-user limits, and counts of what they did (for ``AIClient.snapshot``)."""

    rpm: LimitSpec | None = None
    tpm: LimitSpec | None = None
    hash_key: bytes | None = None
    scope: str = "user"  # or "feature"
    checked: int = field(default=0, compare=False)
    refused: int = field(default=0, compare=False)

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def demands(self, user_id: str, tokens: int) -> list[Demand]:
        """The charges one call of ``user_id`` reserving ``tokens`` makes (empty when no limit is configured)."""
        name = hash_user_id(user_id, self.hash_key) if self.hash_key is not None else user_id
        demands = []
        if self.rpm is not None:
            demands.append(Demand(f"{self.scope}:{name}:rpm", self.rpm, 1.0))
        if self.tpm is not None:
            demands.append(Demand(f"{self.scope}:{name}:tpm", self.tpm, float(tokens)))
        return demands

    async def refusal_message(
        self, limiter: RateLimiter, user_id: str, demands: list[Demand], wait_s: float, tokens: int
    ) -> str:
        """Why a user was refused: the limit that binds (the longest wait) and when the call would fit."""
        binding = demands[0]
        longest = -1.0
        for demand in demands:
            wait = await limiter.wait_time([demand])
            if wait > longest:
                binding, longest = demand, wait
        spec = binding.spec
        scope, setting = self.scope, self.scope.upper()
        who = f"this {scope}" if self.hash_key is not None else f"{scope} {user_id!r}"
        if binding.key.endswith(":rpm"):
            noun = "request" if spec.limit == 1 else "requests"
            what = f"{setting}_RPM: {spec.limit:g} {noun} per {spec.period_s:g} s"
        else:
            what = f"{setting}_TPM: {spec.limit:g} tokens per {spec.period_s:g} s; this call reserves {tokens} tokens"
        return f"{who} is over the per-{scope} limit ({what}); it frees up in {wait_s:.1f} s"

    def snapshot(self) -> dict[str, float | int | None]:
        """Counts only: never an id, raw or hashed."""
        return {
            "rpm": self.rpm.limit if self.rpm is not None else None,
            "tpm": self.tpm.limit if self.tpm is not None else None,
            "checked": self.checked,
            "refused": self.refused,
        }
