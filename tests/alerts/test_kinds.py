"""Every rule kind fires on the data the product writes, with its exact summary, and resolves when it clears with
the exact text of the value that resolved it, in every channel format.

(``success_rate_below`` is walked through in test_lifecycle, ``key_unhealthy`` and
``provider_all_keys_unavailable`` in test_grouping, ``channel_failing`` with real receivers in test_channel_failing.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.evaluator import AlertEvaluator, fingerprint
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from tests.alerts.support import (
    START,
    Calls,
    assert_resolved_text,
    beat,
    commands,
    config,
    episodes,
    key_state,
    outbox,
    provider_state,
    run,
    sent,
)


@pytest.fixture
def clock() -> ManualClock:
    """Time starts at :data:`START` (mid-month, on a half minute) in the alert tests."""
    return ManualClock(START)


ANTHROPIC = {"provider": "anthropic"}
PRIMARY = {"provider": "anthropic", "key_label": "Primary"}


def fire_then_resolve(
    store: sa.Engine,
    clock: ManualClock,
    rule: Rule,
    labels: dict[str, str],
    breach: Callable[[], None],
    recover: Callable[[], None],
    summary: str | None = None,
    value: float | None = None,
    resolved: str | None = None,
) -> AlertEvaluator:
    engine = AlertEvaluator(store, config(rule, group_wait_s=0), clock)
    breach()
    report = run(engine, clock)
    fp = fingerprint(rule.id, labels)
    assert report.errors == {}
    assert report.fired == [fp]
    [episode] = episodes(store)
    assert (episode["rule_id"], episode["labels"], episode["state"]) == (rule.id, labels, "firing")
    if summary is not None:
        assert episode["summary"] == summary
    if value is not None:
        assert episode["value"] == value
    assert run(engine, clock).fired == []  # still firing, nothing new
    recover()
    report = run(engine, clock)
    assert report.errors == {}
    assert report.resolved == [fp]
    assert [t for t, *_ in sent(store)] == ["firing", "resolved"]
    if resolved is not None:
        assert_resolved_text(outbox(store)[-1], resolved)
    return engine


def test_p95_latency_above(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="slow", kind="p95_latency_above", threshold=30_000, window_s=300, min_sample=5)

    def recover() -> None:
        clock.advance(360)
        calls.add(clock.now(), ok=10, latency_ms=500)

    fire_then_resolve(store, clock, rule, ANTHROPIC, lambda: calls.add(clock.now(), ok=10, latency_ms=45_000), recover)
    [episode] = episodes(store)
    assert episode["value"] < 30_000
    assert_resolved_text(
        outbox(store)[-1], f"anthropic p95 latency back to {episode['value']:.0f} ms (≤ 30000 ms) over 5m"
    )


def test_error_class_share_above(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(
        id="rl", kind="error_class_share_above", error_class="rate_limited", threshold=5, window_s=300, min_sample=10
    )

    def breach() -> None:
        calls.add(clock.now(), ok=8, failed=2, error_class=ErrorClass.RATE_LIMITED)
        calls.add(clock.now(), failed=1, error_class=ErrorClass.OVERLOADED)  # another class: not counted

    def recover() -> None:
        clock.advance(360)
        calls.add(clock.now(), ok=20)

    fire_then_resolve(
        store, clock, rule, ANTHROPIC, breach, recover,
        summary="anthropic rate_limited share 18.2 % > 5 % over 5m (2 of 11 calls)",
        resolved="anthropic rate_limited share back to 0.0 % (≤ 5 %) over 5m (0 of 20 calls)",
    )  # fmt: skip


def test_cancelled_calls_never_page_and_are_left_out_of_the_success_rate(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rules = (
        Rule(id="sr", kind="success_rate_below", threshold=95, window_s=300, min_sample=5),
        Rule(id="burn", kind="slo_burn_rate", threshold=2, window_s=300, short_window_s=60, objective=99),
    )
    engine = AlertEvaluator(store, config(*rules, group_wait_s=0), clock)
    calls.add(clock.now(), ok=10, failed=30, error_class=ErrorClass.CANCELLED)  # "Stop generating", 30 times
    report = run(engine, clock)
    assert (report.errors, report.fired) == ({}, [])
    calls.add(clock.now(), failed=2)  # two real errors: 10 of 12 answered calls succeeded
    report = run(engine, clock)
    assert sorted(report.fired) == sorted([fingerprint("sr", ANTHROPIC), fingerprint("burn", ANTHROPIC)])
    summaries = {e["rule_id"]: e["summary"] for e in episodes(store)}
    assert summaries["sr"] == "anthropic success rate 83.3 % < 95 % over 5m (12 calls)"


def test_fallback_rate_above(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="fallbacks", kind="fallback_rate_above", threshold=10, window_s=300, min_sample=10)

    def breach() -> None:
        calls.add(clock.now(), ok=5, provider="openai", key_label="Main", fell_back_from="anthropic")
        calls.add(clock.now(), ok=5, provider="openai", key_label="Main")

    def recover() -> None:
        clock.advance(360)
        calls.add(clock.now(), ok=20, provider="openai", key_label="Main")

    fire_then_resolve(
        store, clock, rule, {"provider": "openai"}, breach, recover,
        summary="openai fallback rate 50.0 % > 10 % over 5m (5 of 10 calls served as a fallback)", value=50.0,
        resolved="openai fallback rate back to 0.0 % (≤ 10 %) over 5m (0 of 20 calls served as a fallback)",
    )  # fmt: skip


def test_breaker_open(store: sa.Engine, clock: ManualClock) -> None:
    rule = Rule(id="breaker", kind="breaker_open", threshold=1)

    def recover() -> None:
        clock.advance(5)
        beat(store, clock.now(), {"anthropic": provider_state(breaker="closed")})

    fire_then_resolve(
        store, clock, rule, ANTHROPIC,
        lambda: beat(store, clock.now(), {"anthropic": provider_state(breaker="open")}), recover,
        summary="anthropic instances with the circuit breaker open 1 ≥ 1, of 1 live", value=1.0,
        resolved="anthropic instances with the circuit breaker open back to 0 (< 1), of 1 live",
    )  # fmt: skip


def test_queue_depth_above(store: sa.Engine, clock: ManualClock) -> None:
    rule = Rule(id="depth", kind="queue_depth_above", threshold=100)

    def breach() -> None:
        beat(store, clock.now(), {"anthropic": provider_state(depth=90)}, instance="app-1")
        beat(store, clock.now(), {"anthropic": provider_state(depth=60)}, instance="app-2")

    def recover() -> None:
        clock.advance(5)
        beat(store, clock.now(), {"anthropic": provider_state(depth=10)}, instance="app-1")
        beat(store, clock.now(), {"anthropic": provider_state(depth=0)}, instance="app-2")

    fire_then_resolve(
        store, clock, rule, ANTHROPIC, breach, recover,
        summary="anthropic queue depth 150 > 100 (summed over live instances)", value=150.0,
        resolved="anthropic queue depth back to 10 (≤ 100) (summed over live instances)",
    )  # fmt: skip


def test_queue_wait_above(store: sa.Engine, clock: ManualClock) -> None:
    rule = Rule(id="wait", kind="queue_wait_above", threshold=60)

    def recover() -> None:
        clock.advance(5)
        beat(store, clock.now(), {"anthropic": provider_state(depth=0, oldest_wait_s=None)})

    fire_then_resolve(
        store, clock, rule, ANTHROPIC,
        lambda: beat(store, clock.now(), {"anthropic": provider_state(depth=3, oldest_wait_s=120.0)}), recover,
        summary="anthropic oldest queued request's wait 120 s > 60 s", value=120.0,
        resolved="anthropic oldest queued request's wait back to 0 s (≤ 60 s)",
    )  # fmt: skip


def test_consecutive_probe_failures(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="probes", kind="consecutive_probe_failures", threshold=3, scope="key")

    def breach() -> None:
        calls.add(clock.now(), ok=1, source="probe")
        clock.advance(60)
        calls.add(clock.now(), failed=3, source="probe", error_class=ErrorClass.AUTH)

    def recover() -> None:
        clock.advance(60)
        calls.add(clock.now(), ok=1, source="probe")

    fire_then_resolve(
        store, clock, rule, PRIMARY, breach, recover,
        summary="anthropic key 'Primary' failed probes in a row 3 ≥ 3", value=3.0,
        resolved="anthropic key 'Primary' failed probes in a row back to 0 (< 3)",
    )  # fmt: skip


def test_cost_per_hour_above(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="hourly", kind="cost_per_hour_above", threshold=10, window_s=3600, scope="global", source="all")

    def breach() -> None:
        calls.add(clock.now(), ok=3, cost_usd=3.0)
        calls.add(clock.now(), ok=1, cost_usd=3.0, source="probe", provider="openai", key_label="Main")

    fire_then_resolve(
        store, clock, rule, {}, breach, lambda: clock.advance(3700),
        summary="all providers spend $12.00 > $10 in the last 1h", value=12.0,
        resolved="all providers spend back to $0.00 (≤ $10): no calls in the last 1h",
    )  # fmt: skip


def test_the_estimated_cost_of_cancelled_calls_counts_toward_the_budget(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="hourly", kind="cost_per_hour_above", threshold=10, window_s=3600, scope="global", source="all")

    def breach() -> None:
        calls.add(clock.now(), ok=2, cost_usd=3.0)
        calls.add(clock.now(), failed=2, cost_usd=3.0, error_class=ErrorClass.CANCELLED)  # billed, then abandoned

    fire_then_resolve(
        store, clock, rule, {}, breach, lambda: clock.advance(3700),
        summary="all providers spend $12.00 > $10 in the last 1h", value=12.0,
    )  # fmt: skip


def test_cost_per_day_above_reads_hours_and_minute_edges(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="daily", kind="cost_per_day_above", threshold=100, window_s=86400, scope="provider", source="all")

    def breach() -> None:
        start = clock.now()
        calls.add(start, ok=2, cost_usd=25.0)  # in a partial hour at the start of the window
        clock.advance(5 * 3600)
        calls.add(clock.now(), ok=2, cost_usd=25.0)  # a whole hour in the middle
        clock.advance(86400 - 5 * 3600 - 60)
        calls.add(clock.now(), ok=1, cost_usd=1.0)  # the partial hour at the end

    def recover() -> None:
        clock.advance(300)  # the first $50 leave the window: $51 < $100

    fire_then_resolve(
        store, clock, rule, ANTHROPIC, breach, recover,
        summary="anthropic spend $101.00 > $100 in the last 1d", value=101.0,
        resolved="anthropic spend back to $51.00 (≤ $100) in the last 1d",
    )  # fmt: skip


def test_tokens_per_hour_above_baseline(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(
        id="tokens", kind="tokens_per_hour_above_baseline", threshold=3, window_s=3600, baseline_s=7 * 86400,
        min_sample=5, scope="global", source="all",
    )  # fmt: skip

    def breach() -> None:
        calls.add(clock.now() - (clock.now() - datetime(2026, 3, 7, 9, 0, tzinfo=UTC)), ok=1, input_tokens=168_000)
        calls.add(clock.now(), ok=5, input_tokens=800, output_tokens=200)

    fire_then_resolve(
        store, clock, rule, {}, breach, lambda: clock.advance(3700),
        summary="all providers tokens per hour 5.0× > 3× over 1h against the 7d baseline (5,000 vs 1,000 tokens/h)",
        value=5.0, resolved="all providers: no calls in the last 1h",
    )  # fmt: skip


def test_no_heartbeat(store: sa.Engine, clock: ManualClock) -> None:
    rule = Rule(id="worker_missing", kind="no_heartbeat", threshold=90, instance_kind="worker", scope="global")
    beat(store, clock.now(), {"anthropic": provider_state()}, instance="app-1", kind="client")

    def breach() -> None:
        beat(store, clock.now(), {"anthropic": provider_state()}, instance="worker-1", kind="worker")
        clock.advance(100)
        beat(store, clock.now(), {"anthropic": provider_state()}, instance="app-1", kind="client")

    fire_then_resolve(
        store, clock, rule, {"instance_kind": "worker"}, breach,
        lambda: beat(store, clock.now(), {"anthropic": provider_state()}, instance="worker-2", kind="worker"),
        summary="time since the last heartbeat of any worker 100 s > 90 s", value=100.0,
        resolved="time since the last heartbeat of any worker back to 0 s (≤ 90 s)",
    )  # fmt: skip


def test_no_probes(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="probes_missing", kind="no_probes", threshold=600)

    def breach() -> None:
        calls.add(clock.now(), ok=1, source="probe")  # 12:00:30: its minute ends 12:01:00
        clock.advance(700)

    fire_then_resolve(
        store, clock, rule, ANTHROPIC, breach, lambda: calls.add(clock.now(), ok=1, source="probe"),
        summary="time since the last anthropic probe result 670 s > 600 s", value=670.0,
        resolved="time since the last anthropic probe result back to 0 s (≤ 600 s)",
    )  # fmt: skip


def test_no_probes_defaults_to_three_probe_intervals(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    engine = AlertEvaluator(store, config(Rule(id="p", kind="no_probes"), probe_interval_s=60), clock)
    calls.add(clock.now(), ok=1, source="probe")
    assert run(engine, clock, 200).fired == []  # 170 s since the probe's minute ended
    assert run(engine, clock, 11).fired == [fingerprint("p", ANTHROPIC)]  # 181 s > 3 × 60 s


def test_slo_burn_rate_needs_both_windows(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(
        id="burn", kind="slo_burn_rate", objective=99, threshold=14.4, window_s=3600, short_window_s=300,
        min_sample=10,
    )  # fmt: skip

    def recover() -> None:  # the long window still burns at 15×, the short one no longer: resolved
        clock.advance(400)
        calls.add(clock.now(), ok=100)

    fire_then_resolve(
        store, clock, rule, ANTHROPIC, lambda: calls.add(clock.now(), ok=70, failed=30), recover,
        summary="anthropic error budget burn rate 30.0× > 14.4× (the lower of 30.0× over 1h and 30.0× over 5m; "
        "99 % objective)",
        resolved="anthropic error budget burn rate back to 0.0× (≤ 14.4×) (the lower of 15.0× over 1h and 0.0× "
        "over 5m; 99 % objective)",
    )  # fmt: skip


def test_key_monthly_spend_warns_and_resolves_when_the_month_rolls_over(store: sa.Engine, clock: ManualClock) -> None:
    calls = Calls(store)
    rule = Rule(id="spend", kind="key_monthly_spend", threshold=80, cap_usd=100, scope="key", source="all")

    def breach() -> None:
        calls.add(datetime(2026, 3, 1, 0, 5, tzinfo=UTC), ok=5, cost_usd=10.0)  # early in the month: hour tier
        calls.add(clock.now(), ok=4, cost_usd=10.0, source="probe")

    def recover() -> None:
        clock.advance((datetime(2026, 4, 1, 0, 0, 30, tzinfo=UTC) - clock.now()).total_seconds())

    fire_then_resolve(
        store, clock, rule, PRIMARY, breach, recover,
        summary="anthropic key 'Primary' month-to-date spend 90 % ≥ 80 % of its $100 cap ($90.00)", value=90.0,
        resolved="anthropic key 'Primary' month-to-date spend back to 0 % (< 80 %): nothing spent this month yet",
    )  # fmt: skip
    assert commands(store) == []  # enforce is off


def test_key_monthly_spend_enforce_disables_the_key_once_and_enables_it_next_month(
    store: sa.Engine, clock: ManualClock
) -> None:
    calls = Calls(store)
    cap = Rule(
        id="key_monthly_spend_cap", kind="key_monthly_spend", threshold=100, cap_usd=50, key_caps={"Backup": 200.0},
        scope="key", source="all", severity="critical", enforce=True,
    )  # fmt: skip
    unhealthy = Rule(id="key_unhealthy", kind="key_unhealthy", scope="key")
    engine = AlertEvaluator(store, config(cap, unhealthy, group_wait_s=0), clock)
    calls.add(clock.now(), ok=5, cost_usd=10.0)  # Primary: $50 of $50
    calls.add(clock.now(), ok=5, cost_usd=10.0, key_label="Backup")  # Backup: $50 of its own $200
    report = run(engine, clock)
    assert report.fired == [fingerprint("key_monthly_spend_cap", PRIMARY)]
    disabled_by = "alert:key_monthly_spend_cap"
    assert commands(store) == [("disable_key", "anthropic", "Primary", disabled_by)]
    assert report.commands == [1]

    # The instances apply it; the key shows as disabled by the alert, which key_unhealthy does not report again.
    reason = f"disabled by {disabled_by} (command 1)"
    providers = {"anthropic": provider_state([key_state("Primary", "disabled", disabled_reason=reason)])}
    for _ in range(3):
        beat(store, clock.now(), providers)
        assert run(engine, clock, 5).fired == []
    restarted = AlertEvaluator(store, config(cap, unhealthy, group_wait_s=0), clock)
    beat(store, clock.now(), providers)
    assert run(restarted, clock).commands == []
    assert len(commands(store)) == 1  # issued once, not per evaluation nor per engine

    # An instance started after the command expired still serves the key: it is disabled again, once.
    clock.advance(3700)
    fresh = {"anthropic": provider_state([key_state("Primary")])}
    for _ in range(3):
        beat(store, clock.now(), providers)
        beat(store, clock.now(), fresh, instance="app-2")
        run(restarted, clock, 5)
    assert commands(store) == [("disable_key", "anthropic", "Primary", disabled_by)] * 2

    clock.advance((datetime(2026, 4, 1, 0, 1, tzinfo=UTC) - clock.now()).total_seconds())
    report = run(restarted, clock)
    assert report.resolved == [fingerprint("key_monthly_spend_cap", PRIMARY)]
    assert commands(store) == [
        ("disable_key", "anthropic", "Primary", disabled_by),
        ("disable_key", "anthropic", "Primary", disabled_by),
        ("enable_key", "anthropic", "Primary", disabled_by),
    ]
    assert run(restarted, clock, 60).commands == []
    assert [t for t, *_ in sent(store)] == ["firing", "resolved"]


def test_enforcement_is_a_subscriber_an_evaluator_can_run_without(store: sa.Engine, clock: ManualClock) -> None:
    """The state machine does not enforce budgets itself: without subscribers the same alert fires and is sent,
    and no control command is written."""
    calls = Calls(store)
    cap = Rule(
        id="key_monthly_spend_cap", kind="key_monthly_spend", threshold=100, cap_usd=50, scope="key", source="all",
        severity="critical", enforce=True,
    )  # fmt: skip
    engine = AlertEvaluator(store, config(cap, group_wait_s=0), clock, subscribers=())
    calls.add(clock.now(), ok=5, cost_usd=10.0)
    report = run(engine, clock)
    assert report.fired == [fingerprint("key_monthly_spend_cap", PRIMARY)] and report.commands == []
    assert commands(store) == []
    assert [t for t, *_ in sent(store)] == ["firing"]


def test_the_shipped_rules_evaluate_cleanly_on_a_live_store(store: sa.Engine, clock: ManualClock) -> None:
    """Every default rule runs against the data a working installation has, without error and without noise."""
    from pulsegate.core.alerts.rules import DEFAULT_RULES

    calls = Calls(store)
    engine = AlertEvaluator(store, config(*DEFAULT_RULES, probe_interval_s=300), clock)
    for _ in range(3):
        calls.add(clock.now(), ok=30, cost_usd=0.01, input_tokens=100, output_tokens=50)
        calls.add(clock.now(), ok=1, source="probe", provider="openai", key_label="Main")
        beat(store, clock.now(), {"anthropic": provider_state([key_state("Primary")])}, kind="worker")
        report = run(engine, clock, 20)
        assert report.errors == {}
        assert report.pending == report.fired == []
    assert report.readings >= 15


def test_enforcement_reaches_a_real_client_through_its_heartbeat(store: sa.Engine, clock: ManualClock) -> None:
    """disable_key reaches the client's key pool; enable_key gives the key back when the month rolls over."""
    from pulsegate import AIClient
    from pulsegate.core.ops.heartbeat import instance_heartbeat
    from pulsegate.core.provider import Provider
    from pulsegate.core.settings import load_settings

    keys = {
        "ANTHROPIC_API_KEY": "sk-ant-test-primary-" + "x" * 24,
        "ANTHROPIC_API_KEY_2": "sk-ant-test-backup-" + "x" * 24,
    }
    settings = load_settings({**keys, "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}, env_file=None)
    client = AIClient(settings, clock=clock, instance_id="app-1", heartbeat=False)
    try:
        heartbeat = instance_heartbeat(client.instance, store, interval_s=5.0)
        pool = client.pools[Provider.ANTHROPIC]
        primary = pool.by_label("Primary")
        assert primary is not None
        cap = Rule(
            id="key_monthly_spend_cap", kind="key_monthly_spend", threshold=100, cap_usd=50, scope="key",
            source="all", severity="critical", enforce=True,
        )  # fmt: skip
        unhealthy = Rule(id="key_unhealthy", kind="key_unhealthy", scope="key")
        engine = AlertEvaluator(store, config(cap, unhealthy, group_wait_s=0), clock)
        clock.advance(1)
        heartbeat.beat(clock.now())
        Calls(store).add(clock.now(), ok=5, cost_usd=10.0)
        assert run(engine, clock).fired == [fingerprint("key_monthly_spend_cap", PRIMARY)]

        for _ in range(3):
            clock.advance(5)
            heartbeat.beat(clock.now())
            assert run(engine, clock).fired == []  # the key now shows disabled by the alert: not "unhealthy"
        assert pool.state(primary).disabled_reason == "disabled by alert:key_monthly_spend_cap (command 1)"

        clock.advance((datetime(2026, 4, 1, 0, 0, 10, tzinfo=UTC) - clock.now()).total_seconds())
        heartbeat.beat(clock.now())
        assert run(engine, clock).resolved == [fingerprint("key_monthly_spend_cap", PRIMARY)]
        clock.advance(5)
        heartbeat.beat(clock.now())
        assert pool.state(primary).disabled_reason is None
        assert [c for c, *_ in commands(store)] == ["disable_key", "enable_key"]
        assert [t for t, *_ in sent(store)] == ["firing", "resolved"]
    finally:
        client.close()
