"""Per-key budgets: continuously refilled token buckets, like the providers' own limiters.

A bucket holds at most `limit` units and refills at `limit / period` units per second. A request is admitted when
every bucket holds what it needs; the header values (remaining, time to full) are read from the same buckets.

Cost of one inference request (documented in docs/emulator.md):
- requests bucket: 1;
- tokens bucket: input estimate + max_tokens reserved at admission, the unused part of max_tokens is given back
  as soon as the answer is generated (so the net cost is input + output tokens);
- input-tokens / output-tokens buckets (only when configured): input estimate / max_tokens, same give-back.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulsegate.emulator.scenario import KeyPolicy


class TokenBucket:
    """One continuously refilled bucket; `now` is always passed in so the clock stays injectable."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, capacity: int, period: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = self.capacity / period
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 if it is now); assumes `refill` was just called."""
        if amount <= self.level:
            return 0.0
        return (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount

    def give(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)

    @property
    def remaining(self) -> int:
        return max(0, int(self.level))

    def seconds_to_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request was refused: which bucket, how long until it would fit, and whether it can ever fit."""

    bucket: str
    wait: float
    too_large: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """A header view of one bucket."""

    limit: int
    remaining: int
    reset: float


class KeyBudget:
    """The buckets of one key. `input`/`output` buckets exist only when the policy sets them."""

    __slots__ = ("buckets", "policy")

    def __init__(self, policy: KeyPolicy, now: float) -> None:
        self.policy = policy
        p = policy.period
        self.buckets: dict[str, TokenBucket] = {
            "requests": TokenBucket(policy.requests, p, now),
            "tokens": TokenBucket(policy.tokens, p, now),
        }
        if policy.input_tokens is not None:
            self.buckets["input_tokens"] = TokenBucket(policy.input_tokens, p, now)
        if policy.output_tokens is not None:
            self.buckets["output_tokens"] = TokenBucket(policy.output_tokens, p, now)

    def _needs(self, input_tokens: int, max_output: int) -> dict[str, int]:
        needs = {"requests": 1, "tokens": input_tokens + max_output}
        if "input_tokens" in self.buckets:
            needs["input_tokens"] = input_tokens
        if "output_tokens" in self.buckets:
            needs["output_tokens"] = max_output
        return needs

    def admit(self, now: float, input_tokens: int, max_output: int) -> Denial | None:
        """Take the reservation and return None, or take nothing and say which bucket refused."""
        needs = self._needs(input_tokens, max_output)
        worst: Denial | None = None
        for name, amount in needs.items():
            bucket = self.buckets[name]
            bucket.refill(now)
            if amount > bucket.capacity:
                return Denial(name, bucket.seconds_to_full(), too_large=True)
            wait = bucket.wait_for(amount)
            if wait > 0 and (worst is None or wait > worst.wait):
                worst = Denial(name, wait)
        if worst is not None:
            return worst
        for name, amount in needs.items():
            self.buckets[name].take(amount)
        return None

    def give_back(self, unused_output: int) -> None:
        """Return the part of max_tokens that was reserved but not generated."""
        if unused_output > 0:
            self.buckets["tokens"].give(unused_output)
            out = self.buckets.get("output_tokens")
            if out is not None:
                out.give(unused_output)

    def windows(self, now: float) -> dict[str, Window]:
        """Header values per bucket name; input/output mirror `tokens` when they are not configured."""
        views: dict[str, Window] = {}
        for name, b in self.buckets.items():
            b.refill(now)
            views[name] = Window(int(b.capacity), b.remaining, b.seconds_to_full())
        views.setdefault("input_tokens", views["tokens"])
        views.setdefault("output_tokens", views["tokens"])
        return views


class BudgetBook:
    """All keys' budgets, created lazily from the scenario's policy for that key."""

    __slots__ = ("_budgets",)

    def __init__(self) -> None:
        self._budgets: dict[str, KeyBudget] = {}

    def get(self, key: str, policy: KeyPolicy, now: float) -> KeyBudget:
        budget = self._budgets.get(key)
        if budget is None or budget.policy is not policy:
            budget = KeyBudget(policy, now)
            self._budgets[key] = budget
        return budget

    def clear(self) -> None:
        self._budgets.clear()
