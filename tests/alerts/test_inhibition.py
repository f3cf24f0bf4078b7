"""Inhibition in the storm: while the provider-wide overload or breaker alert is open (pending included), that
provider's per-key alerts are not notified — in the order a 529 storm produces them — and what happens when a
per-key alert started first, or outlives the provider-wide one."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.evaluator import AlertEvaluator, fingerprint
from pulsegate.core.alerts.rules import DEFAULT_RULES, Rule
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from tests.alerts.support import (
    OPS,
    START,
    Calls,
    assert_resolved_text,
    beat,
    config,
    key_state,
    outbox,
    provider_state,
    run,
    sent,
)

SHIPPED = {rule.id: rule for rule in DEFAULT_RULES}
# The shipped rules (so their inhibits settings are what is tested), with timings for a two-minute storm.
OVERLOADED = replace(SHIPPED["overloaded_share_high"], window_s=60, for_s=30, keep_firing_for_s=60, min_sample=10)
BREAKER = replace(SHIPPED["breaker_open"], for_s=0, keep_firing_for_s=30)
PROBES = replace(SHIPPED["probe_failures"], keep_firing_for_s=0)
KEYS = replace(SHIPPED["key_unhealthy"], for_s=0, keep_firing_for_s=0)
RULES = (OVERLOADED, BREAKER, PROBES, KEYS)
ANTHROPIC_KEYS = ("Primary", "Backup 1", "Backup 2")
STEP_S = 5


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def _probe_fp(provider: str, label: str) -> str:
    return fingerprint("probe_failures", {"provider": provider, "key_label": label})


class Storm:
    """Writes what the product writes during a 529 storm, one step of ``STEP_S`` at a time."""

    def __init__(self, store: sa.Engine, clock: ManualClock) -> None:
        self.store, self.clock, self.calls = store, clock, Calls(store)
        self.breaker = "closed"
        self.statuses = dict.fromkeys(ANTHROPIC_KEYS, "healthy")

    def step(self, *, overloaded: bool) -> None:
        now = self.clock.now()
        for label in ANTHROPIC_KEYS:
            if overloaded:
                self.calls.add(now, ok=1, failed=2, key_label=label, error_class=ErrorClass.OVERLOADED)
            else:
                self.calls.add(now, ok=3, key_label=label)
        self.calls.add(now, ok=3, provider="openai", key_label="Main")
        keys = [key_state(label, status) for label, status in self.statuses.items()]
        beat(
            self.store,
            now,
            {"anthropic": provider_state(keys, breaker=self.breaker), "openai": provider_state([key_state("Main")])},
        )

    def probes(self, provider: str, label: str, *, ok: bool) -> None:
        if ok:
            self.calls.add(self.clock.now(), ok=1, source="probe", provider=provider, key_label=label)
        else:
            self.calls.add(
                self.clock.now(), failed=3, source="probe", provider=provider, key_label=label,
                error_class=ErrorClass.OVERLOADED,
            )  # fmt: skip


def test_the_storm_sends_the_provider_wide_alerts_and_no_per_key_alert(store: sa.Engine, clock: ManualClock) -> None:
    engine = AlertEvaluator(store, config(*RULES, channels=(OPS,), group_wait_s=10), clock)
    storm = Storm(store, clock)
    for _ in range(4):  # calm
        clock.advance(STEP_S)
        storm.step(overloaded=False)
        run(engine, clock)

    inhibited: set[str] = set()
    for step in range(16):  # 80 s of 529s
        clock.advance(STEP_S)
        if step == 2:  # every anthropic key fails its probes while the overload alert is still pending
            for label in ANTHROPIC_KEYS:
                storm.probes("anthropic", label, ok=False)
            storm.probes("openai", "Main", ok=False)  # another provider's key: nothing inhibits it
        if step >= 6:  # the breaker opens, and lets a trial call through now and then (half-open)
            storm.breaker = "half_open" if step % 5 == 0 else "open"
        if step == 8:
            storm.statuses["Backup 2"] = "unhealthy"
        storm.step(overloaded=True)
        inhibited |= set(run(engine, clock).inhibited)

    assert inhibited == {
        *(_probe_fp("anthropic", label) for label in ANTHROPIC_KEYS),
        fingerprint("key_unhealthy", {"provider": "anthropic", "key_label": "Backup 2"}),
    }
    storm.breaker = "closed"
    storm.statuses["Backup 2"] = "healthy"
    for label in ANTHROPIC_KEYS:  # the storm is over: the probes pass, the key recovers
        storm.probes("anthropic", label, ok=True)
    storm.probes("openai", "Main", ok=True)
    for _ in range(30):  # the overload leaves its 1-minute window, then keeps firing for 1 more
        clock.advance(STEP_S)
        storm.step(overloaded=False)
        run(engine, clock)

    assert [(t, g) for t, _, g, _ in sent(store)] == [
        ("firing", "probe_failures/provider=openai"),
        ("firing", "breaker_open/provider=anthropic"),
        ("firing", "overloaded_share_high/provider=anthropic"),
        ("resolved", "probe_failures/provider=openai"),
        ("resolved", "breaker_open/provider=anthropic"),
        ("resolved", "overloaded_share_high/provider=anthropic"),
    ]
    resolved = {row["group_key"]: row for row in outbox(store) if row["transition"] == "resolved"}
    assert_resolved_text(
        resolved["breaker_open/provider=anthropic"],
        "anthropic instances with the circuit breaker open back to 0 (< 1), of 1 live",
    )
    assert_resolved_text(
        resolved["overloaded_share_high/provider=anthropic"],
        "anthropic overloaded share back to 0.0 % (≤ 5 %) over 1m (0 of 111 calls)",
    )


def test_a_per_key_alert_notified_before_the_provider_wide_one_gets_no_repeat_but_its_resolved(
    store: sa.Engine, clock: ManualClock
) -> None:
    engine = AlertEvaluator(store, config(*RULES, group_wait_s=0, repeat_interval_s=60), clock)
    storm = Storm(store, clock)
    storm.statuses["Primary"] = "unhealthy"  # before the storm: notified
    clock.advance(STEP_S)
    storm.step(overloaded=False)
    run(engine, clock)
    assert [t for t, *_ in sent(store)] == ["firing"]

    storm.breaker = "open"  # the breaker opens: Primary's alert is inhibited — no repeat while it is
    for _ in range(14):
        clock.advance(STEP_S)
        storm.step(overloaded=False)
        report = run(engine, clock)
    assert report.inhibited == [fingerprint("key_unhealthy", {"provider": "anthropic", "key_label": "Primary"})]
    key_group = "key_unhealthy/provider=anthropic"
    assert [t for t, _, g, _ in sent(store) if g == key_group] == ["firing"]  # the breaker's repeat, not its own
    assert [t for t, _, g, _ in sent(store) if g != key_group] == ["firing", "repeat"]

    storm.statuses["Primary"] = "healthy"  # it resolves while still inhibited: the receiver is told it ended
    clock.advance(STEP_S)
    storm.step(overloaded=False)
    run(engine, clock)
    assert [t for t, _, g, _ in sent(store) if g == key_group] == ["firing", "resolved"]
    assert_resolved_text(
        outbox(store)[-1], "anthropic key 'Primary' is healthy (not unhealthy or disabled), score 1.00"
    )


def test_a_per_key_alert_outliving_the_provider_wide_one_is_sent_when_it_resolves(
    store: sa.Engine, clock: ManualClock
) -> None:
    engine = AlertEvaluator(store, config(*RULES, group_wait_s=0), clock)
    storm = Storm(store, clock)
    storm.breaker = "open"
    clock.advance(STEP_S)
    storm.step(overloaded=False)
    run(engine, clock)
    storm.statuses["Backup 1"] = "disabled"
    for _ in range(4):
        clock.advance(STEP_S)
        storm.step(overloaded=False)
        assert run(engine, clock).inhibited != []
    storm.breaker = "closed"  # the breaker closes, and resolves after its keep_firing_for (30 s)
    sent_after = []
    for _ in range(8):
        clock.advance(STEP_S)
        storm.step(overloaded=False)
        run(engine, clock)
        sent_after.append([(t, g) for t, _, g, _ in sent(store)][1:])
    assert sent_after[5] == []  # 25 s: the breaker alert still fires, Backup 1 is still inhibited
    assert sent_after[6] == [
        ("resolved", "breaker_open/provider=anthropic"),
        ("firing", "key_unhealthy/provider=anthropic"),  # released: still disabled, so now it is news
    ]


def test_a_pending_provider_wide_alert_holds_per_key_alerts_and_releases_them_if_it_clears(
    store: sa.Engine, clock: ManualClock
) -> None:
    overloaded = replace(OVERLOADED, for_s=60)
    engine = AlertEvaluator(store, config(overloaded, KEYS, group_wait_s=0), clock)
    storm = Storm(store, clock)
    clock.advance(STEP_S)
    storm.step(overloaded=True)
    assert run(engine, clock).pending == []  # 9 calls: fewer than min_sample
    storm.statuses["Primary"] = "unhealthy"
    clock.advance(STEP_S)
    storm.step(overloaded=True)
    report = run(engine, clock)
    assert fingerprint("overloaded_share_high", {"provider": "anthropic"}) in report.pending
    assert report.fired == [fingerprint("key_unhealthy", {"provider": "anthropic", "key_label": "Primary"})]
    assert report.inhibited == [fingerprint("key_unhealthy", {"provider": "anthropic", "key_label": "Primary"})]
    assert sent(store) == []
    clock.advance(STEP_S)  # the overload clears before its `for`: nothing fired, the key alert is released
    storm.calls.add(clock.now(), ok=200, key_label="Backup 1")
    storm.step(overloaded=False)
    report = run(engine, clock)
    assert report.resolved == [fingerprint("overloaded_share_high", {"provider": "anthropic"})]
    assert [(t, g) for t, _, g, _ in sent(store)] == [("firing", "key_unhealthy/provider=anthropic")]


def test_only_provider_scope_causes_inhibit(store: sa.Engine, clock: ManualClock) -> None:
    """success_rate_low (a symptom) does not inhibit: a revoked key lowers the provider's success rate, and the
    key's own alert is the one that says why."""
    success = replace(SHIPPED["success_rate_low"], window_s=60, for_s=0, min_sample=5)
    engine = AlertEvaluator(store, config(success, KEYS, group_wait_s=0), clock)
    storm = Storm(store, clock)
    storm.statuses["Backup 2"] = "disabled"
    clock.advance(STEP_S)
    storm.step(overloaded=True)
    report = run(engine, clock)
    assert report.inhibited == []
    assert sorted(g for _, _, g, _ in sent(store)) == [
        "key_unhealthy/provider=anthropic",
        "success_rate_low/provider=anthropic",
    ]
    assert isinstance(success, Rule) and not success.inhibits
