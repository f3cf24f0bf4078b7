"""The demo's failure cycle: calm → Anthropic 529 storm → 429 pressure on one key → an invalid key → recovery.

Each phase is an emulator scenario (the file shape of docs/emulator.md) pushed through the emulator's admin API
when the phase starts, so this module needs nothing of the emulator's code. Phase boundaries are fractions of
the cycle, so ``--cycle-s`` shortens every phase alike; time comes from an injectable clock so the order and
timings are tested without sleeping.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulsegate.core.clock import SYSTEM_CLOCK, Clock

KEYS_PER_PROVIDER = 3
DEFAULT_CYCLE_S = 180.0
MIN_CYCLE_S = 20.0

#: (name, share of the cycle, what the operator should notice). Shares add up to 1.
PHASE_PLAN: tuple[tuple[str, float, str], ...] = (
    ("calm", 0.08, "every call succeeds"),
    ("anthropic_529_storm", 0.25, "Anthropic answers 529 overloaded: the breaker opens, calls fall back to OpenAI"),
    ("key_429_pressure", 0.20, "one Anthropic key gets 429s: it cools down and traffic moves to the other keys"),
    ("invalid_key", 0.20, "one Anthropic key is revoked (401): it is disabled until a probe finds it working"),
    ("recovery", 0.27, "all is well again: a probe restores the revoked key, the last alerts resolve"),
)


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    """An alert a fault phase should raise: its rule, and labels the alert must carry (others may be present).

    ``needs_s``: how long the phase must last for the rule to fire for certain (a probe-streak rule needs several
    probe intervals); in a shorter phase the alert may or may not come, but if it comes it comes once and resolves.
    """

    rule_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    needs_s: float = 0.0

    def matches(self, rule_id: str, labels: Mapping[str, str]) -> bool:
        return rule_id == self.rule_id and all(labels.get(k) == v for k, v in self.labels.items())


_ANTHROPIC = {"provider": "anthropic"}
#: The incident each fault phase is, as alerts: what should notify (firing once, resolved once, per channel) from
#: the phase's start to the end of the cycle's recovery. Any other rule notifying, or anything sent in the calm
#: phase, is noise. Written from what each rule measures (core/alerts/rules.py) under the demo's alert timings
#: (setup.ALERT_RULES; probes every 15 s); ``benchmarks/soak.py`` checks them. Keys: Backup 1 gets the 429s,
#: Backup 2 is revoked (see phase_scenarios).
EXPECTED_ALERTS: dict[str, tuple[ExpectedAlert, ...]] = {
    "calm": (),
    "anthropic_529_storm": (
        # provider-wide: 90 % of Anthropic attempts answer 529; per-key alerts are inhibited by the open breaker
        ExpectedAlert("breaker_open", _ANTHROPIC),
        ExpectedAlert("overloaded_share_high", _ANTHROPIC),
        ExpectedAlert("success_rate_low", _ANTHROPIC),
        # fallback attempts are OpenAI's rows (fell_back_from = anthropic)
        ExpectedAlert("fallback_rate_high", {"provider": "openai"}),
    ),
    "key_429_pressure": (ExpectedAlert("rate_limited_share_high", _ANTHROPIC),),
    # the revoked key is disabled at its first 401 (probe streaks are off in the demo: a probe every 15 s cannot
    # fit a streak of 3 into a phase reliably)
    "invalid_key": (ExpectedAlert("key_unhealthy", {**_ANTHROPIC, "key_label": "Backup 2"}),),
    "recovery": (),
}


@dataclass(frozen=True, slots=True)
class DemoKeys:
    """Fake key values made at run time (never written to the repository); the emulator knows them by value."""

    anthropic: tuple[str, ...]
    openai: tuple[str, ...]

    @classmethod
    def generate(cls, count: int = KEYS_PER_PROVIDER) -> DemoKeys:
        return cls(
            anthropic=tuple(f"demo-anthropic-{secrets.token_hex(8)}" for _ in range(count)),
            openai=tuple(f"demo-openai-{secrets.token_hex(8)}" for _ in range(count)),
        )

    def environ(self) -> dict[str, str]:
        """``ANTHROPIC_API_KEY``, ``ANTHROPIC_API_KEY_2`` …: labelled Primary, Backup 1, Backup 2."""
        env: dict[str, str] = {}
        for prefix, values in (("ANTHROPIC_API_KEY", self.anthropic), ("OPENAI_API_KEY", self.openai)):
            for index, value in enumerate(values):
                env[prefix if index == 0 else f"{prefix}_{index + 1}"] = value
        return env


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start_s: float  # offset within the cycle
    duration_s: float
    description: str
    scenario: dict[str, Any] = field(compare=False, repr=False)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def _base() -> dict[str, Any]:
    """What every phase shares: realistic latency and streams long enough to watch."""
    return {
        "seed": 7,
        "latency": {"kind": "lognormal", "median_ms": 220, "sigma": 0.4, "max_ms": 1500, "ttft_ms": 100,
                    "per_token_ms": 8},
        "reply": {"extra_words": 12},
    }  # fmt: skip


def phase_scenarios(keys: DemoKeys) -> dict[str, dict[str, Any]]:
    """The emulator scenario of each phase. The 429 and invalid-key phases hit Backup 1 and Backup 2."""
    pressured, revoked = keys.anthropic[1 % len(keys.anthropic)], keys.anthropic[-1]
    pressure = {"kind": "rate_limit", "provider": "anthropic", "key": pressured, "rate": 0.8, "retry_after": 2}
    return {
        "calm": _base(),
        "anthropic_529_storm": {**_base(), "faults": [{"kind": "overloaded", "provider": "anthropic", "rate": 0.9}]},
        "key_429_pressure": {**_base(), "faults": [pressure]},
        "invalid_key": {**_base(), "keys": {revoked: {"behaviour": "invalid"}}},
        "recovery": _base(),
    }


def build_phases(cycle_s: float, keys: DemoKeys) -> tuple[Phase, ...]:
    if cycle_s < MIN_CYCLE_S:
        raise ValueError(f"the cycle must last at least {MIN_CYCLE_S:g} s, got {cycle_s:g}")
    scenarios = phase_scenarios(keys)
    phases, start = [], 0.0
    for name, share, description in PHASE_PLAN:
        phases.append(Phase(name, round(start, 3), round(share * cycle_s, 3), description, scenarios[name]))
        start += share * cycle_s
    return tuple(phases)


class ScenarioCycle:
    """Which phase is in force ``elapsed`` seconds after the start; the cycle repeats forever."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases:
            raise ValueError("a cycle needs at least one phase")
        self.phases = tuple(phases)
        self.cycle_s = phases[-1].end_s

    def at(self, elapsed: float) -> tuple[int, Phase]:
        """(cycle number from 0, phase) at ``elapsed`` seconds."""
        number, offset = divmod(max(elapsed, 0.0), self.cycle_s)
        for phase in self.phases:
            if offset < phase.end_s:
                return int(number), phase
        return int(number), self.phases[-1]  # float edge: offset == cycle_s

    def next_change_in(self, elapsed: float) -> float:
        number, phase = self.at(elapsed)
        return number * self.cycle_s + phase.end_s - elapsed


class ScenarioDriver:
    """Applies each phase once, when it starts. ``tick()`` is called by the orchestrator's loop and returns the
    seconds until the next phase change (its sleep)."""

    def __init__(self, cycle: ScenarioCycle, apply: Callable[[Phase], None], clock: Clock = SYSTEM_CLOCK) -> None:
        self.cycle = cycle
        self.apply = apply
        self.clock = clock
        self.started = clock.monotonic()
        self.current: tuple[int, str] | None = None
        self.history: list[tuple[float, int, str]] = []  # (elapsed, cycle, phase) of each change

    def tick(self) -> float:
        elapsed = self.clock.monotonic() - self.started
        number, phase = self.cycle.at(elapsed)
        if (number, phase.name) != self.current:
            self.apply(phase)
            self.current = (number, phase.name)
            self.history.append((elapsed, number, phase.name))
        return max(self.cycle.next_change_in(elapsed), 0.0)


def emulator_applier(admin_url: str, timeout_s: float = 5.0) -> Callable[[Phase], None]:
    """PUT each phase's scenario to ``<emulator>/_emulator/scenario`` (loopback; the emulator validates it)."""

    def apply(phase: Phase) -> None:
        body = json.dumps(phase.scenario).encode()
        request = urllib.request.Request(  # noqa: S310 — a loopback http URL we built
            f"{admin_url}/_emulator/scenario", data=body, method="PUT", headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read()

    return apply
