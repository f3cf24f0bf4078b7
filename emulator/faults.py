"""Fault injection: choosing which rule fires for a request, and reshaping a stream for stream faults.

Rules are tried in scenario order; the first that matches and fires wins. A rule with `count` fires for the next
`count` matching requests only (each firing also needs the `rate` draw to succeed), which makes tests exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pulsegate.emulator.scenario import STREAM_FAULTS, Fault


@dataclass(frozen=True, slots=True)
class Target:
    """The facts about a request that rules filter on."""

    provider: str
    route: str
    key: str | None
    model: str | None
    stream: bool


def matches(rule: Fault, t: Target) -> bool:
    if rule.provider is not None and rule.provider != t.provider:
        return False
    if rule.route is not None and not (rule.route == t.route or t.route.endswith("." + rule.route)):
        return False
    if rule.key is not None and rule.key != t.key:
        return False
    if rule.model is not None and rule.model != t.model:
        return False
    if rule.stream is not None and rule.stream != t.stream:
        return False
    if rule.kind == "drip_body" and t.stream:
        return False  # a whole body only; a stream drips with the scenario's per-token latency
    return not (rule.kind in STREAM_FAULTS and not t.stream)


class FaultBook:
    """The active rules with their remaining counts and a seeded RNG (reset restores both)."""

    def __init__(self, rules: tuple[Fault, ...], seed: int) -> None:
        self.rules = rules
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.remaining: list[int | None] = [r.count for r in self.rules]
        self.rng = random.Random(self.seed)

    def add(self, rule: Fault) -> None:
        self.rules = (*self.rules, rule)
        self.remaining.append(rule.count)

    def pick(self, t: Target) -> Fault | None:
        if not self.rules:
            return None
        for i, rule in enumerate(self.rules):
            left = self.remaining[i]
            if left == 0 or not matches(rule, t):
                continue
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            if left is not None:
                self.remaining[i] = left - 1
            return rule
        return None


def reshape_stream(
    rule: Fault, events: list[tuple[bool, bytes]], error_event: bytes, broken_event: bytes
) -> tuple[list[tuple[bool, bytes]], dict[int, float], bool]:
    """Apply a stream fault to the event list: (events, extra delay before event index, finish cleanly?).

    - truncate_stream: keep the first `after_events` events, then end the body and close the connection;
    - stall_stream: pause `seconds` before event `after_events`, then carry on;
    - stream_error: keep `after_events` events, then send the provider's error event and end;
    - malformed_json: replace event `after_events` with a line of broken JSON.
    """
    n = min(rule.after_events, max(0, len(events) - 1))
    if rule.kind == "truncate_stream":
        return events[:n], {}, False
    if rule.kind == "stall_stream":
        return events, {n: rule.seconds}, True
    if rule.kind == "stream_error":
        return [*events[:n], (False, error_event)], {}, True
    if rule.kind == "malformed_json":
        return [*events[:n], (False, broken_event), *events[n + 1 :]], {}, True
    return events, {}, True


#: How many pieces a ``drip_body`` fault cuts a whole body into.
DRIP_PIECES = 10


def drip(body: bytes, seconds: float) -> list[tuple[float, bytes]]:
    """A whole body as :data:`DRIP_PIECES` chunks, ``seconds`` apart (the first at once): a server that answers
    promptly but sends its body slowly, which a per-read timeout never catches."""
    size = -(-len(body) // DRIP_PIECES)
    return [(seconds if i else 0.0, body[at : at + size]) for i, at in enumerate(range(0, len(body), size))]
