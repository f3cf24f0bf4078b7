"""Hysteresis: a value oscillating around its threshold sends exactly one firing and one resolved notification —
the alert resolves only once the value is back past the resolve threshold and has stayed there for
``keep_firing_for`` (time moved by the test's clock, never slept)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.evaluator import AlertEvaluator, fingerprint
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.clock import ManualClock
from tests.alerts.support import (
    OPS,
    PAGER,
    START,
    Calls,
    assert_resolved_text,
    beat,
    config,
    episodes,
    key_state,
    outbox,
    provider_state,
    run,
    sent,
)

ANTHROPIC = {"provider": "anthropic"}
STEP_S = 360  # each evaluation's 5-minute window holds only the calls of its own step


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def _success(percent_tenths: int) -> tuple[int, int]:
    """(ok, failed) of 1000 calls with this success rate in tenths of a percent."""
    return percent_tenths, 1000 - percent_tenths


SUCCESS = Rule(
    id="success_rate_low", kind="success_rate_below", threshold=95.0, resolve_threshold=97.0, window_s=300,
    keep_firing_for_s=600, min_sample=10, severity="critical", title="Success rate low",
)  # fmt: skip


def test_a_success_rate_oscillating_around_its_threshold_fires_once_and_resolves_once(
    store: sa.Engine, clock: ManualClock
) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(store, config(SUCCESS, channels=(OPS, PAGER), group_wait_s=0), clock)
    fp = fingerprint("success_rate_low", ANTHROPIC)
    # around 95 % for an hour, never back to 97 %: one firing, then nothing
    trace = [940, 960, 945, 965, 940, 958, 949, 962, 944, 969]
    # back to ≥ 97 %, a dip to 96.5 % (still short of the resolve threshold) restarts keep_firing_for, then
    # ≥ 97 % for 10 minutes resolves it; wobbling above 95 % after that sends nothing
    trace += [975, 980, 965, 972, 980, 985, 960, 970, 955, 990]
    states = []
    for tenths in trace:
        clock.advance(STEP_S)
        ok, failed = _success(tenths)
        calls.add(clock.now(), ok=ok, failed=failed)
        run(engine, clock)
        states.append(episodes(store)[-1]["state"])
    assert states == ["firing"] * 15 + ["resolved"] * 5
    assert [(t, c) for t, c, *_ in sent(store)] == [
        ("firing", "ops"),
        ("firing", "pager"),
        ("resolved", "ops"),
        ("resolved", "pager"),
    ]
    firing, resolved = outbox(store)[0], outbox(store)[2]
    assert firing["message"]["alerts"][0]["summary"] == "anthropic success rate 94.0 % < 95 % over 5m (1,000 calls)"
    assert_resolved_text(resolved, "anthropic success rate back to 98.5 % (≥ 97 %) over 5m (1,000 calls)")
    assert resolved["message"]["alerts"][0]["resolve_threshold"] == 97.0
    assert [e["fingerprint"] for e in episodes(store)] == [fp]


def test_without_hysteresis_the_same_trace_flaps(store: sa.Engine, clock: ManualClock) -> None:
    """The same oscillation against a rule without hysteresis: one firing and one resolved per crossing."""
    calls = Calls(store)
    bare = replace(SUCCESS, resolve_threshold=None, keep_firing_for_s=0.0)
    engine = AlertEvaluator(store, config(bare, group_wait_s=0), clock)
    for tenths in (940, 960, 945, 965, 940, 958):
        clock.advance(STEP_S)
        calls.add(clock.now(), ok=tenths, failed=1000 - tenths)
        run(engine, clock)
    assert [t for t, *_ in sent(store)] == ["firing", "resolved"] * 3


def test_between_the_thresholds_a_firing_alert_says_when_it_will_resolve(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(store, config(SUCCESS, group_wait_s=0), clock)
    for tenths in (940, 962):
        clock.advance(STEP_S)
        calls.add(clock.now(), ok=tenths, failed=1000 - tenths)
        run(engine, clock)
    [episode] = episodes(store)
    assert (episode["state"], episode["clear_since"]) == ("firing", None)
    assert episode["summary"] == ("anthropic success rate 96.2 % over 5m (1,000 calls); fires < 95 %, resolves ≥ 97 %")
    clock.advance(STEP_S)
    calls.add(clock.now(), ok=975, failed=25)
    run(engine, clock)
    [episode] = episodes(store)
    assert (episode["state"], episode["clear_since"]) == ("firing", clock.now())
    assert episode["summary"] == "anthropic success rate back to 97.5 % (≥ 97 %) over 5m (1,000 calls)"


def test_a_queue_depth_flapping_every_few_seconds_fires_once_and_resolves_once(
    store: sa.Engine, clock: ManualClock
) -> None:
    rule = Rule(
        id="queue_depth_high", kind="queue_depth_above", threshold=100, resolve_threshold=50, keep_firing_for_s=60,
        title="Queue depth high",
    )  # fmt: skip
    engine = AlertEvaluator(store, config(rule, group_wait_s=0), clock)
    depths = [110, 95, 105, 60, 120, 99, 101, 45, 130]  # a minute around the threshold
    depths += [40, 30, 45, 20, 10, 0, 49, 0]  # at or below 50 from here: resolved 60 s after the first, at 49
    depths += [90, 60, 99]  # busy again but never above 100: nothing
    for depth in depths:
        clock.advance(10)
        beat(store, clock.now(), {"anthropic": provider_state(depth=depth)})
        run(engine, clock)
    assert [t for t, *_ in sent(store)] == ["firing", "resolved"]
    assert_resolved_text(outbox(store)[1], "anthropic queue depth back to 49 (≤ 50) (summed over live instances)")


def test_keep_firing_for_holds_a_state_alert_through_a_flapping_status(store: sa.Engine, clock: ManualClock) -> None:
    rule = Rule(id="key_unhealthy", kind="key_unhealthy", scope="key", keep_firing_for_s=120, title="Key unhealthy")
    engine = AlertEvaluator(store, config(rule, group_wait_s=0), clock)
    statuses = ["unhealthy", "healthy", "unhealthy", "cooldown", "healthy", "unhealthy"]  # flapping every 20 s
    statuses += ["healthy"] * 7  # healthy for 140 s: resolved once 120 s have passed
    for status in statuses:
        clock.advance(20)
        beat(store, clock.now(), {"anthropic": provider_state([key_state("Primary", status)])})
        run(engine, clock)
    assert [t for t, *_ in sent(store)] == ["firing", "resolved"]
    assert_resolved_text(outbox(store)[1], "anthropic key 'Primary' is healthy (not unhealthy or disabled), score 1.00")


def test_a_label_set_gone_still_waits_keep_firing_for(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(store, config(SUCCESS, group_wait_s=0), clock)
    calls.add(clock.now(), ok=900, failed=100)
    run(engine, clock)
    clock.advance(STEP_S)  # no calls in the window: nothing to measure
    run(engine, clock)
    [episode] = episodes(store)
    assert (episode["state"], episode["clear_since"]) == ("firing", clock.now())
    assert episode["summary"] == "anthropic: no calls in the last 5m"
    assert run(engine, clock, 599).resolved == []
    assert run(engine, clock, 1).resolved == [fingerprint("success_rate_low", ANTHROPIC)]
    assert_resolved_text(outbox(store)[-1], "anthropic: no calls in the last 5m")
    # nothing was measured: the message and the episode carry no value (not the 90 % it fired at)
    [alert] = outbox(store)[-1]["message"]["alerts"]
    assert (alert["state"], alert["value"], episodes(store)[0]["value"]) == ("resolved", None, None)


def test_a_pending_alert_that_clears_is_closed_whatever_its_hysteresis(store: sa.Engine, clock: ManualClock) -> None:
    """Hysteresis keeps *firing* alerts firing; a breach shorter than ``for`` still never fires."""
    calls = Calls(store)
    rule = replace(SUCCESS, for_s=600.0)
    engine = AlertEvaluator(store, config(rule, group_wait_s=0), clock)
    calls.add(clock.now(), ok=940, failed=60)
    assert run(engine, clock).pending == [fingerprint("success_rate_low", ANTHROPIC)]
    clock.advance(STEP_S)
    calls.add(clock.now(), ok=960, failed=40)  # above 95 %, below 97 %: the breach is over
    report = run(engine, clock)
    assert report.resolved == [fingerprint("success_rate_low", ANTHROPIC)] and outbox(store) == []
