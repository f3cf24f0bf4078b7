# ruff: noqa: E501  (expected problem lines read best whole)
"""The rules file's validator: every problem of the file at once (several per rule, and the channels'), a "did
you mean" for a misspelt rule id, and hysteresis fields checked against the threshold they belong to."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulsegate.core.alerts.config import AlertConfigError, load_alert_config
from pulsegate.core.alerts.rules import DEFAULT_RULES
from pulsegate.core.settings import Settings


def _load(tmp_path: Path, text: str):
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return load_alert_config(Settings(alert_rules_file=str(path)))  # type: ignore[call-arg]


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(AlertConfigError) as caught:
        _load(tmp_path, text)
    return caught.value.problems


def test_every_problem_of_every_rule_is_reported_at_once(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[[rules]]
id = "success_rate_low"
threshold = "high"
window = "soon"
severity = "page"
keep_firing_for = -1

[[rules]]
id = "sucess_rate_low"
threshold = 90

[[rules]]
id = "my_rule"
kind = "error_class_share_above"
threshold = 150
windw = "5m"

[[channels]]
name = "ops"
format = "teams"
url = "https://example.invalid/hook"
""",
    )
    assert problems == [
        "rule 'success_rate_low': threshold: expected a number, got 'high'",
        "rule 'success_rate_low': window: expected a duration such as 300 or '5m', got 'soon'",
        "rule 'success_rate_low': severity: expected one of info, warning, critical, got 'page'",
        "rule 'success_rate_low': keep_firing_for: expected a duration of 0 or more, got -1",
        "rule 'sucess_rate_low': id: unknown rule id 'sucess_rate_low' (did you mean 'success_rate_low'?)",
        "rule 'my_rule': windw: unknown field (did you mean 'window'?)",
        "rule 'my_rule': window: is required for kind error_class_share_above",
        "rule 'my_rule': threshold: is a percentage 0–100, got 150",
        "rule 'my_rule': error_class: is required for kind error_class_share_above",
        "channel 'ops': format: 'teams' is not one of slack, discord, generic",
    ]


def test_a_misspelt_rule_id_without_a_kind_gets_a_did_you_mean(tmp_path: Path) -> None:
    assert _problems(tmp_path, '[[rules]]\nid = "sucess_rate_low"\n') == [
        "rule 'sucess_rate_low': id: unknown rule id 'sucess_rate_low' (did you mean 'success_rate_low'?)"
    ]
    assert _problems(tmp_path, '[[rules]]\nid = "probe_failure"\nthreshold = 2\n') == [
        "rule 'probe_failure': id: unknown rule id 'probe_failure' (did you mean 'probe_failures'?)"
    ]
    # nothing close: a new rule needs a kind
    assert _problems(tmp_path, '[[rules]]\nid = "my_rule"\n')[0].startswith(
        "rule 'my_rule': kind: is required for a new rule; one of success_rate_below, "
    )


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[[rules]]\nid = "success_rate_low"\nresolve_threshold = 90', "rule 'success_rate_low': resolve_threshold: must be at or above the threshold (95), got 90: it fires when the value is < 95 and resolves when it is back ≥ the resolve threshold"),
        ('[[rules]]\nid = "queue_depth_high"\nresolve_threshold = 150', "rule 'queue_depth_high': resolve_threshold: must be at or below the threshold (100), got 150: it fires when the value is > 100 and resolves when it is back ≤ the resolve threshold"),
        ('[[rules]]\nid = "probe_failures"\nresolve_threshold = 5', "rule 'probe_failures': resolve_threshold: must be at or below the threshold (3), got 5: it fires when the value is ≥ 3 and resolves when it is back < the resolve threshold"),
        ('[[rules]]\nid = "probe_failures"\nresolve_threshold = 0', "rule 'probe_failures': resolve_threshold: must be above 0 (nothing is < 0), got 0"),
        ('[[rules]]\nid = "fallback_rate_high"\nresolve_threshold = -1', "rule 'fallback_rate_high': resolve_threshold: is a percentage 0–100, got -1"),
        ('[[rules]]\nid = "key_unhealthy"\nresolve_threshold = 1', "rule 'key_unhealthy': resolve_threshold: does not apply to kind key_unhealthy"),
        ('[[rules]]\nid = "probes_missing"\nresolve_threshold = 60', "rule 'probes_missing': resolve_threshold: needs an explicit threshold to lie beside"),
        ('[[rules]]\nid = "key_unhealthy"\ninhibits = true', "rule 'key_unhealthy': inhibits: only a provider-scope rule can inhibit per-key alerts (scope is key)"),
        ('[[rules]]\nid = "breaker_open"\nkeep_firing_for = "a while"', "rule 'breaker_open': keep_firing_for: expected a duration such as 300 or '5m', got 'a while'"),
    ],
)  # fmt: skip
def test_hysteresis_fields_are_checked_against_their_threshold(tmp_path: Path, toml: str, problem: str) -> None:
    assert _problems(tmp_path, toml) == [problem]


def test_hysteresis_and_inhibition_are_configurable(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """
[[rules]]
id = "success_rate_low"
resolve_threshold = 99
keep_firing_for = "10m"
inhibits = false

[[rules]]
id = "fallback_rate_high"
threshold = 20

[[rules]]
id = "openai_overloaded"
kind = "error_class_share_above"
error_class = "overloaded"
provider = "openai"
threshold = 10
resolve_threshold = 4
window = "5m"
inhibits = true
""",
    )
    rules = {r.id: r for r in config.rules}
    success = rules["success_rate_low"]
    assert (success.threshold, success.resolve_threshold, success.keep_firing_for_s, success.inhibits) == (
        95.0,
        99.0,
        600.0,
        False,
    )
    # a new threshold alone resolves at itself (the shipped resolve threshold belonged to the shipped threshold)
    fallback = rules["fallback_rate_high"]
    assert (fallback.threshold, fallback.resolve_threshold, fallback.resolve_bound) == (20.0, None, 20.0)
    assert fallback.keep_firing_for_s == 300.0
    added = rules["openai_overloaded"]
    assert (added.resolve_threshold, added.keep_firing_for_s, added.inhibits) == (4.0, 0.0, True)


def test_every_shipped_rule_has_hysteresis_and_the_causes_inhibit() -> None:
    hysteresis = {r.id: (r.threshold, r.resolve_threshold, r.keep_firing_for_s) for r in DEFAULT_RULES}
    assert hysteresis == {
        "success_rate_low": (95.0, 97.0, 300.0),
        "latency_p95_high": (30000.0, 25000.0, 300.0),
        "rate_limited_share_high": (5.0, 2.0, 300.0),
        "overloaded_share_high": (10.0, 5.0, 300.0),
        "key_unhealthy": (None, None, 120.0),
        "provider_keys_unavailable": (None, None, 60.0),
        "breaker_open": (1.0, None, 120.0),  # a count of instances: back below 1 is the only way back
        "queue_depth_high": (100.0, 50.0, 300.0),
        "queue_wait_high": (60.0, 30.0, 300.0),
        "fallback_rate_high": (10.0, 5.0, 300.0),
        "probe_failures": (3.0, 1.0, 600.0),  # back below 1: a probe passed; for 10m: two passing probes
        "cost_per_hour_high": (10.0, 8.0, 900.0),
        "cost_per_day_high": (100.0, 90.0, 3600.0),
        "key_monthly_spend_warning": (80.0, None, 0.0),  # month-to-date spend only grows: nothing to flap
        "key_monthly_spend_cap": (100.0, None, 0.0),
        "tokens_per_hour_spike": (3.0, 2.0, 900.0),
        "worker_heartbeat_missing": (90.0, 30.0, 120.0),
        "client_heartbeat_missing": (300.0, 60.0, 120.0),
        "probes_missing": (None, None, 300.0),
        "channel_failing": (None, None, 300.0),
        "slo_burn_fast": (14.4, None, 300.0),  # the short window is the burn rate's own hysteresis
        "slo_burn_slow": (6.0, None, 900.0),
    }
    assert [r.id for r in DEFAULT_RULES if r.inhibits] == [
        "overloaded_share_high",
        "provider_keys_unavailable",
        "breaker_open",
    ]


def test_the_demo_rules_load_and_every_rule_they_use_has_hysteresis(monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    from pulsegate.core.alerts.config import build_config
    from pulsegate.jobs.cli.demo.setup import ALERT_RULES, DISCORD_URL_ENV

    monkeypatch.setenv(DISCORD_URL_ENV, "http://127.0.0.1:9/discord")
    config = build_config(tomllib.loads(ALERT_RULES), Settings())  # type: ignore[call-arg]
    rules = {r.id: r for r in config.rules}
    assert config.disabled_rules == ("probe_failures", "slo_burn_fast", "slo_burn_slow")
    incident_rules = {  # id: (threshold, resolve threshold, window, for, keep firing for)
        "breaker_open": (1.0, None, None, 0.0, 10.0),
        "overloaded_share_high": (10.0, 3.0, 30.0, 5.0, 5.0),
        "success_rate_low": (50.0, 85.0, 30.0, 5.0, 5.0),
        "fallback_rate_high": (20.0, 5.0, 30.0, 5.0, 5.0),
        "rate_limited_share_high": (20.0, 5.0, 30.0, 5.0, 5.0),
        "key_unhealthy": (None, None, None, 0.0, 0.0),
    }
    assert {
        rule_id: (r.threshold, r.resolve_threshold, r.window_s, r.for_s, r.keep_firing_for_s)
        for rule_id, r in rules.items()
        if rule_id in incident_rules
    } == incident_rules
    assert rules["rate_limited_share_high"].scope == "key" and rules["key_unhealthy"].statuses == ("disabled",)
    assert [r.id for r in config.rules if r.inhibits] == [
        "overloaded_share_high",
        "provider_keys_unavailable",
        "breaker_open",
    ]
