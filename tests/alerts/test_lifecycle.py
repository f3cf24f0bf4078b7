"""The episode state machine over time: for, group wait, repeat, resolve, min sample, restarts, routing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.evaluator import AlertEvaluator, fingerprint
from pulsegate.core.alerts.model import Message
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
    outbox,
    provider_state,
    run,
    sent,
    states,
)


@pytest.fixture
def clock() -> ManualClock:
    """Time starts at :data:`START` (mid-month, on a half minute) in the alert tests."""
    return ManualClock(START)


SUCCESS = Rule(
    id="success_rate_low",
    kind="success_rate_below",
    threshold=95.0,
    window_s=300,
    for_s=120,
    min_sample=10,
    severity="critical",
    title="Success rate low",
)
ANTHROPIC = {"provider": "anthropic"}
FP = fingerprint("success_rate_low", ANTHROPIC)
GROUP = "success_rate_low/provider=anthropic"


def _iso(moment) -> str:
    return moment.isoformat()


def test_an_alert_goes_pending_fires_notifies_once_repeats_and_resolves(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(store, config(SUCCESS, channels=(OPS, PAGER), repeat_interval_s=900), clock)
    t0 = clock.now()
    calls.add(t0 - timedelta(seconds=30), ok=8, failed=2)

    report = run(engine, clock)
    assert report.pending == [FP] and report.fired == [] and report.notifications == 0
    assert states(store) == [("success_rate_low", ANTHROPIC, "pending")]

    report = run(engine, clock, 60)  # breached for 60 s of the 120 s "for"
    assert report.fired == [] and states(store)[0][2] == "pending"

    calls.add(clock.now(), ok=8, failed=2)
    report = run(engine, clock, 60)  # 120 s: fires, but waits for its group
    assert report.fired == [FP] and report.notifications == 0
    fired_at = clock.now()
    [episode] = episodes(store)
    assert (episode["state"], episode["fired_at"], episode["last_notified_at"]) == ("firing", fired_at, None)
    assert outbox(store) == []

    report = run(engine, clock, 20)
    assert report.notifications == 0  # still inside group_wait (30 s)
    report = run(engine, clock, 10)
    assert report.notifications == 2
    rows = outbox(store)
    assert [(r["channel"], r["transition"], r["group_key"], r["episode_ids"], r["status"]) for r in rows] == [
        ("ops", "firing", GROUP, [1], "pending"),
        ("pager", "firing", GROUP, [1], "pending"),
    ]
    notified_at = clock.now()
    assert rows[0]["next_attempt_at"] == notified_at and rows[0]["attempts"] == 0
    assert (
        rows[0]["message"]
        == rows[1]["message"]
        == {
            "transition": "firing",
            "group_key": GROUP,
            "title": "[FIRING] Success rate low · anthropic",
            "severity": "critical",
            "alerts": [
                {
                    "rule_id": "success_rate_low",
                    "fingerprint": FP,
                    "labels": {"provider": "anthropic"},
                    "severity": "critical",
                    "state": "firing",
                    "summary": "anthropic success rate 80.0 % < 95 % over 5m (20 calls)",
                    "value": 80.0,
                    "threshold": 95.0,
                    "window_s": 300.0,
                    "started_at": _iso(fired_at),
                    "resolved_at": None,
                    "episode_id": 1,
                    "resolve_threshold": None,
                }
            ],
            "dashboard_url": "http://127.0.0.1:8501",
            "created_at": _iso(notified_at),
        }
    )
    assert Message.from_json(rows[0]["message"]).to_json() == rows[0]["message"]

    # Still firing: nothing more until the repeat interval, also not from a restarted engine.
    for _ in range(3):
        calls.add(clock.now(), ok=8, failed=2)
        assert run(engine, clock, 60).notifications == 0
    restarted = AlertEvaluator(store, config(SUCCESS, channels=(OPS, PAGER), repeat_interval_s=900), clock)
    assert run(restarted, clock).notifications == 0
    assert len(outbox(store)) == 2

    for _ in range(12):  # 15 min after the first notification: one repeat per channel
        calls.add(clock.now(), ok=8, failed=2)
        run(restarted, clock, 60)
    assert [(t, c) for t, c, _, _ in sent(store)] == [
        ("firing", "ops"),
        ("firing", "pager"),
        ("repeat", "ops"),
        ("repeat", "pager"),
    ]
    repeat = outbox(store)[2]["message"]
    assert repeat["title"] == "[REPEAT] Success rate low · anthropic"
    assert repeat["alerts"][0]["state"] == "firing" and repeat["alerts"][0]["started_at"] == _iso(fired_at)

    # Recovery: the failures leave the 5-minute window.
    clock.advance(301)
    calls.add(clock.now(), ok=30)
    report = run(restarted, clock)  # the window now starts after the last failures
    assert report.resolved == [FP]
    assert states(store) == [("success_rate_low", ANTHROPIC, "resolved")]
    resolved = outbox(store)[4:]
    assert [(r["channel"], r["transition"], r["episode_ids"]) for r in resolved] == [
        ("ops", "resolved", [1]),
        ("pager", "resolved", [1]),
    ]
    message = resolved[0]["message"]
    assert message["title"] == "[RESOLVED] Success rate low · anthropic"
    assert message["alerts"][0]["state"] == "resolved"
    assert message["alerts"][0]["resolved_at"] == _iso(clock.now())
    assert_resolved_text(resolved[0], "anthropic success rate back to 100.0 % (≥ 95 %) over 5m (30 calls)")
    assert message["alerts"][0]["value"] == 100.0

    # Resolved stays resolved: no further rows, and a new breach opens a new episode.
    assert run(restarted, clock, 60).notifications == 0
    assert len(outbox(store)) == 6


def test_a_breach_shorter_than_for_never_fires(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(store, config(SUCCESS), clock)
    calls.add(clock.now(), ok=5, failed=5)
    assert run(engine, clock).pending == [FP]
    calls.add(clock.now(), ok=200)
    report = run(engine, clock, 60)
    assert report.resolved == [FP] and report.notifications == 0
    [episode] = episodes(store)
    assert (episode["state"], episode["fired_at"], episode["resolved_at"]) == ("resolved", None, clock.now())
    assert outbox(store) == []


def test_min_sample_holds_the_state_and_no_data_resolves(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(**{**_fields(SUCCESS), "for_s": 0.0})
    engine = AlertEvaluator(store, config(rule, group_wait_s=0), clock)
    calls.add(clock.now(), failed=9)  # 9 < min_sample 10: not trusted
    report = run(engine, clock)
    assert report.readings == 1 and report.pending == [] and episodes(store) == []

    calls.add(clock.now(), failed=1)
    report = run(engine, clock, 1)
    assert report.fired == [FP] and report.notifications == 1  # for 0 and no group wait: at once

    run(engine, clock, 290)
    calls.add(clock.now(), ok=3)  # the failures are still in the window: 10 failed + 3 ok
    assert run(engine, clock, 5).resolved == []
    clock.advance(39)  # failures out of the window: 3 ok calls < min_sample → held, not resolved
    report = run(engine, clock)
    assert report.resolved == [] and states(store)[0][2] == "firing"
    report = run(engine, clock, 300)  # no calls at all in the window: the label set is gone → resolved
    assert report.resolved == [FP]
    assert [t for t, *_ in sent(store)] == ["firing", "resolved"]


def test_severity_routing_sends_warnings_to_the_channels_that_take_them(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    warning = Rule(**{**_fields(SUCCESS), "severity": "warning", "for_s": 0.0})
    engine = AlertEvaluator(store, config(warning, channels=(OPS, PAGER), group_wait_s=0), clock)
    calls.add(clock.now(), ok=1, failed=19)
    assert run(engine, clock).notifications == 1
    assert [(t, c) for t, c, _, _ in sent(store)] == [("firing", "ops")]


def test_no_channels_still_tracks_state(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(
        store, config(Rule(**{**_fields(SUCCESS), "for_s": 0.0}), channels=(), group_wait_s=0), clock
    )
    calls.add(clock.now(), failed=20)
    report = run(engine, clock)
    assert report.fired == [FP] and report.notifications == 0
    assert episodes(store)[0]["last_notified_at"] == clock.now()


def _fields(rule: Rule) -> dict:
    return {name: getattr(rule, name) for name in rule.__dataclass_fields__}


def test_a_restart_inside_group_wait_notifies_once(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(**{**_fields(SUCCESS), "for_s": 0.0})
    calls.add(clock.now(), failed=20)
    first = AlertEvaluator(store, config(rule), clock)
    assert run(first, clock).fired == [FP]  # fired, waiting for its group: then the worker stops
    second = AlertEvaluator(store, config(rule), clock)
    calls.add(clock.now() + timedelta(seconds=30), failed=20)
    assert run(second, clock, 30).notifications == 1
    third = AlertEvaluator(store, config(rule), clock)
    assert run(third, clock, 30).notifications == 0
    assert [(t, c) for t, c, _, _ in sent(store)] == [("firing", "ops")]
    assert states(store) == [("success_rate_low", ANTHROPIC, "firing")]


def test_a_rule_that_cannot_be_evaluated_holds_its_alerts_and_spares_the_others(
    store: sa.Engine, clock: ManualClock
) -> None:
    calls = Calls(store)
    rule = Rule(**{**_fields(SUCCESS), "for_s": 0.0})
    calls.add(clock.now(), failed=20)
    engine = AlertEvaluator(store, config(rule, group_wait_s=0), clock)
    assert run(engine, clock).fired == [FP]
    broken = Rule(**{**_fields(rule), "window_s": None})  # skips check_rule: its signal fails
    other = Rule(id="depth", kind="queue_depth_above", threshold=1)
    engine = AlertEvaluator(store, config(broken, other, group_wait_s=0), clock)
    clock.advance(10)
    beat(store, clock.now(), {"anthropic": provider_state(depth=5)})
    report = run(engine, clock)
    assert list(report.errors) == ["success_rate_low"]
    assert report.fired == [fingerprint("depth", ANTHROPIC)]
    assert report.resolved == [] and states(store)[0] == ("success_rate_low", ANTHROPIC, "firing")
