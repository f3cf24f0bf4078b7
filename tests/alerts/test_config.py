# ruff: noqa: E501  (the table of bad files reads best one case a line)
"""Rules in force: shipped defaults, TOML overrides and additions, clear errors, and reloads that keep the last good
configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pulsegate.core.alerts.config import AlertConfigError, AlertConfigLoader, load_alert_config
from pulsegate.core.alerts.kinds import KINDS
from pulsegate.core.alerts.rule_fields import format_duration, parse_duration
from pulsegate.core.alerts.rule_parsing import check_rule
from pulsegate.core.alerts.rules import DEFAULT_RULES, describe_rule
from pulsegate.core.settings import Settings


def _settings(path: Path | None = None, **extra: object) -> Settings:
    values: dict[str, object] = {"alert_rules_file": str(path) if path else None, **extra}
    return Settings(**values)  # type: ignore[arg-type]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(AlertConfigError) as caught:
        load_alert_config(_settings(_write(tmp_path, text)))
    assert str(tmp_path / "alerts.toml") in str(caught.value)
    return caught.value.problems


def test_every_kind_has_a_valid_default_rule() -> None:
    assert {rule.kind for rule in DEFAULT_RULES} == set(KINDS)
    assert len({rule.id for rule in DEFAULT_RULES}) == len(DEFAULT_RULES)
    for rule in DEFAULT_RULES:
        check_rule(rule)
    config = load_alert_config(_settings())
    assert config.rules == DEFAULT_RULES and config.channels == ()
    assert (config.group_wait_s, config.repeat_interval_s) == (30.0, 14400.0)


def test_the_slo_defaults_are_the_sre_workbook_pairs() -> None:
    rules = {r.id: describe_rule(r) for r in DEFAULT_RULES if r.kind == "slo_burn_rate"}
    assert [(r["window"], r["threshold"]) for r in rules.values()] == [("1h", 14.4), ("6h", 6.0)]
    short = {r.id: r.short_window_s for r in DEFAULT_RULES if r.kind == "slo_burn_rate"}
    assert short == {"slo_burn_fast": 300, "slo_burn_slow": 1800}


def test_a_file_overrides_disables_and_adds_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
group_wait = "1m"
repeat_interval = "2h"

[[rules]]
id = "success_rate_low"
threshold = 99
window = "10m"
for = 0
labels = { team = "platform" }

[[rules]]
id = "latency_p95_high"
enabled = false

[[rules]]
id = "key_monthly_spend_cap"
cap_usd = 50
key_caps = { "Batch key" = 200.0 }
enforce = true

[[rules]]
id = "openai_overloaded"
kind = "error_class_share_above"
error_class = "overloaded"
provider = "openai"
threshold = 2.5
window = 300
severity = "critical"
""",
    )
    config = load_alert_config(_settings(path))
    rules = {r.id: r for r in config.rules}
    assert "latency_p95_high" not in rules and config.disabled_rules == ("latency_p95_high",)
    success = rules["success_rate_low"]
    assert (success.threshold, success.window_s, success.for_s, dict(success.labels)) == (
        99.0,
        600.0,
        0.0,
        {"team": "platform"},
    )
    assert success.min_sample == 20 and success.severity == "critical"  # untouched fields keep the default
    cap = rules["key_monthly_spend_cap"]
    assert (cap.cap_usd, dict(cap.key_caps), cap.enforce, cap.cap_for("Batch key"), cap.cap_for("Primary")) == (
        50.0,
        {"Batch key": 200.0},
        True,
        200.0,
        50.0,
    )
    added = config.rules[-1]
    assert (added.id, added.kind, added.error_class, added.provider, added.threshold, added.scope) == (
        "openai_overloaded",
        "error_class_share_above",
        "overloaded",
        "openai",
        2.5,
        "provider",
    )
    assert (config.group_wait_s, config.repeat_interval_s, config.source) == (60.0, 7200.0, str(path))


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[[rules]]\nid = "success_rate_low"\nthreshold = "high"', "rule 'success_rate_low': threshold: expected a number, got 'high'"),
        ('[[rules]]\nid = "success_rate_low"\nthreshold = 120', "rule 'success_rate_low': threshold: is a percentage 0–100, got 120"),
        ('[[rules]]\nid = "success_rate_low"\nwindow = "5 minutes"', "rule 'success_rate_low': window: expected a duration such as 300 or '5m', got '5 minutes'"),
        ('[[rules]]\nid = "success_rate_low"\nseverity = "page"', "rule 'success_rate_low': severity: expected one of info, warning, critical, got 'page'"),
        ('[[rules]]\nid = "success_rate_low"\nthreshhold = 90', "rule 'success_rate_low': threshhold: unknown field (did you mean 'threshold'?)"),
        ('[[rules]]\nid = "success_rate_low"\nkind = "p95_latency_above"', "rule 'success_rate_low': kind: cannot change a default rule's kind (success_rate_below); give the new rule another id"),
        ('[[rules]]\nid = "success_rate_low"\nenforce = true', "rule 'success_rate_low': enforce: does not apply to kind success_rate_below"),
        ('[[rules]]\nid = "my_rule"\nthreshold = 1', "rule 'my_rule': kind: is required for a new rule; one of " + ", ".join(KINDS)),
        ('[[rules]]\nid = "my_rule"\nkind = "cost_per_week_above"', "rule 'my_rule': kind: expected one of " + ", ".join(KINDS) + ", got 'cost_per_week_above' (did you mean 'cost_per_day_above'?)"),
        ('[[rules]]\nid = "my_rule"\nkind = "p95_latency_above"\nthreshold = 100', "rule 'my_rule': window: is required for kind p95_latency_above"),
        ('[[rules]]\nid = "my_rule"\nkind = "error_class_share_above"\nthreshold = 5\nwindow = "5m"', "rule 'my_rule': error_class: is required for kind error_class_share_above"),
        ('[[rules]]\nid = "my_rule"\nkind = "error_class_share_above"\nerror_class = "boom"\nthreshold = 5\nwindow = "5m"', "rule 'my_rule': error_class: expected one of " + ", ".join(e.value for e in __import__("pulsegate.core.errors", fromlist=["ErrorClass"]).ErrorClass) + ", got 'boom'"),
        ('[[rules]]\nid = "burn"\nkind = "slo_burn_rate"\nthreshold = 6\nwindow = "6h"', "rule 'burn': objective: is required: the success objective in percent, e.g. 99.9"),
        ('[[rules]]\nid = "key_unhealthy"\nscope = "provider"', "rule 'key_unhealthy': scope: kind key_unhealthy supports key, got 'provider'"),
        ('[[rules]]\nid = "key_unhealthy"\nlabels = { provider = "x" }', "rule 'key_unhealthy': labels: provider is set by the rule's scope; choose another label name"),
        ('[[rules]]\nid = "Bad Id"\nkind = "breaker_open"', "rule 'Bad Id': id: use lower-case letters, digits, '_', '-' and '.', got 'Bad Id'"),
        ('[[rules]]\nthreshold = 1', "rules[0]: id: is required (a default's id to change it, or a new one with a kind)"),
        ('[[rules]]\nid = "breaker_open"\nfor = -5', "rule 'breaker_open': for: expected a duration of 0 or more, got -5"),
        ('[[rules]]\nid = "a"\nkind = "breaker_open"\nthreshold = 1\n[[rules]]\nid = "a"\nkind = "breaker_open"', "rule 'a': id: defined twice in the file"),
        ('repeat_interval = "10s"', "repeat_interval: expected at least 60 s, got 10 s"),
        ('colour = "red"', "colour: unknown top-level field"),
    ],
)  # fmt: skip
def test_a_bad_file_names_the_rule_the_field_and_the_problem(tmp_path: Path, toml: str, problem: str) -> None:
    assert _problems(tmp_path, toml) == [problem]


def test_every_problem_is_listed_at_once_including_channels(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
[[rules]]
id = "success_rate_low"
threshold = "x"

[[rules]]
id = "queue_depth_high"
for = "soon"

[[channels]]
name = "ops"
format = "teams"
url = "https://example.invalid/hook"
""",
    )
    assert problems[:2] == [
        "rule 'success_rate_low': threshold: expected a number, got 'x'",
        "rule 'queue_depth_high': for: expected a duration such as 300 or '5m', got 'soon'",
    ]
    assert len(problems) == 3 and problems[2].startswith("channel 'ops': format:")


def test_a_file_that_is_not_toml_or_missing_is_one_clear_error(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "[[rules]\nid = 1")
    assert len(problems) == 1 and problems[0].startswith("not valid TOML: ")
    with pytest.raises(AlertConfigError) as caught:
        load_alert_config(_settings(tmp_path / "missing.toml"))
    assert caught.value.problems == [f"ALERT_RULES_FILE: {tmp_path / 'missing.toml'} does not exist"]


def test_the_monitoring_webhook_adds_the_default_channel() -> None:
    url = "https://hooks.slack.com/services/T000/B000/verysecrettoken123"
    config = load_alert_config(_settings(monitoring_webhook_url=url, dashboard_url="https://dash.example.com"))
    [channel] = config.channels
    assert (channel.name, channel.format, config.dashboard_url) == ("default", "slack", "https://dash.example.com")
    assert "verysecrettoken123" not in repr(config)


def test_a_reload_that_fails_keeps_the_last_good_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, '[[rules]]\nid = "success_rate_low"\nthreshold = 90\n')
    loader = AlertConfigLoader(_settings(path))
    assert loader.get().rule("success_rate_low").threshold == 90.0  # type: ignore[union-attr]

    path.write_text('[[rules]]\nid = "success_rate_low"\nthreshold = "ninety-nine"\n')
    os.utime(path, (1, 1))
    kept = loader.get()
    assert kept.rule("success_rate_low").threshold == 90.0  # type: ignore[union-attr]
    assert loader.last_error is not None
    assert loader.last_error.problems == ["rule 'success_rate_low': threshold: expected a number, got 'ninety-nine'"]
    assert "previous ones stay in force" in caplog.text and "Traceback" not in caplog.text

    path.write_text('[[rules]]\nid = "success_rate_low"\nthreshold = 97\n')
    os.utime(path, (2, 2))
    assert loader.get().rule("success_rate_low").threshold == 97.0  # type: ignore[union-attr]
    assert loader.last_error is None
    assert loader.get() is loader.get()  # unchanged file: not re-read


def test_the_first_load_of_a_bad_file_raises(tmp_path: Path) -> None:
    with pytest.raises(AlertConfigError):
        AlertConfigLoader(_settings(_write(tmp_path, '[[rules]]\nid = "x"\n')))


def test_durations() -> None:
    assert [parse_duration(v) for v in (300, 1.5, "90s", "5m", "1h", "7d", "250ms")] == [
        300.0,
        1.5,
        90.0,
        300.0,
        3600.0,
        604800.0,
        0.25,
    ]
    assert [format_duration(s) for s in (300, 3600, 5400, 86400, 90, 1.5)] == ["5m", "1h", "90m", "1d", "90s", "1.5s"]
