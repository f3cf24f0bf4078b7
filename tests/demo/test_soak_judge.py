"""The soak run's verdicts (benchmarks/soak_judge.py) on hand-made timelines and messages, and the demo's list of
expected alerts against the demo's own alert rules."""

from __future__ import annotations

import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pulsegate.core.alerts.config import build_config
from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.demo.scenario import EXPECTED_ALERTS, PHASE_PLAN, ExpectedAlert
from pulsegate.jobs.cli.demo.setup import ALERT_RULES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import soak_judge as judge

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
STORM = {"provider": "anthropic"}
EXPECTED = {
    "calm": (),
    "storm": (ExpectedAlert("breaker_open", STORM), ExpectedAlert("probe_failures", STORM, needs_s=60)),
    "recovery": (),
}
CHANNELS = ("default", "discord")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def timeline(cycles: int = 1) -> judge.Timeline:
    """calm 10 s, storm 30 s, recovery 20 s per 60 s cycle, after 5 s of startup."""
    spans = [judge.PhaseSpan(-1, "startup", at(-5), at(0))]
    for cycle in range(cycles):
        base = cycle * 60
        spans += [
            judge.PhaseSpan(cycle, "calm", at(base), at(base + 10)),
            judge.PhaseSpan(cycle, "storm", at(base + 10), at(base + 40)),
            judge.PhaseSpan(cycle, "recovery", at(base + 40), at(base + 60)),
        ]
    return judge.Timeline(spans)


def alert(rule: str, state: str, episode: int, **extra: object) -> judge.NoticeAlert:
    values = {"labels": dict(STORM), "summary": "", "value": None, "threshold": None, **extra}
    return judge.NoticeAlert(rule, state=state, episode_id=episode, **values)  # type: ignore[arg-type]


def notice(seconds: float, transition: str, *alerts: judge.NoticeAlert) -> list[judge.Notice]:
    """The same message to both channels."""
    return [judge.Notice(c, transition, at(seconds), "", alerts) for c in CHANNELS]


def run(notices: list[judge.Notice], starts: dict[int, float], cycles: int = 1) -> judge.AlertVerdict:
    line = timeline(cycles)
    episode_starts = {episode: at(s) for episode, s in starts.items()}
    return judge.judge_notices(notices, episode_starts, line, EXPECTED, CHANNELS, list(range(cycles)))


def test_one_firing_and_one_resolved_per_channel_meets_the_incident() -> None:
    verdict = run(
        notice(12, "firing", alert("breaker_open", "firing", 1))
        + notice(45, "resolved", alert("breaker_open", "resolved", 1)),
        {1: 11},
    )
    assert (verdict.missing_or_extra, verdict.unexpected, verdict.in_calm) == ({}, {}, {})
    assert [(k, (c.firing, c.resolved)) for k, c in sorted(verdict.counts.items())] == [
        ((0, "storm", 0, "default"), (1, 1)),
        ((0, "storm", 0, "discord"), (1, 1)),
        ((0, "storm", 1, "default"), (0, 0)),
        ((0, "storm", 1, "discord"), (0, 0)),
    ]
    assert verdict.optional == {(0, "storm", 1)}  # 30 s of storm, the probe rule needs 60 s


def test_a_flap_a_repeat_a_missing_resolve_and_a_late_resolve_are_each_reported() -> None:
    flapping = (
        notice(12, "firing", alert("breaker_open", "firing", 1))
        + notice(20, "resolved", alert("breaker_open", "resolved", 1))
        + notice(25, "firing", alert("breaker_open", "firing", 2))
        + notice(35, "repeat", alert("breaker_open", "firing", 2))
    )
    verdict = run(flapping, {1: 11, 2: 24})
    assert verdict.lines(verdict.missing_or_extra) == [
        "breaker_open (provider=anthropic) in storm of cycle 1: 3 firing and 1 resolved (expected 1 and 1) "
        "[default, discord]"
    ]
    late = notice(12, "firing", alert("breaker_open", "firing", 1)) + notice(
        62, "resolved", alert("breaker_open", "resolved", 1)
    )
    verdict = run(late, {1: 11}, cycles=2)
    assert "1 firing and 1 resolved, 1 after the end of its recovery" in next(iter(verdict.missing_or_extra))
    assert list(verdict.in_calm) == ["resolved message sent during calm at 12:01:02 (calm of cycle 2): breaker_open"]


def test_other_rules_alerts_begun_outside_a_fault_and_calm_messages_are_noise() -> None:
    notices = (
        notice(15, "firing", alert("success_rate_low", "firing", 1))
        + notice(50, "firing", alert("breaker_open", "firing", 2))
        + notice(5, "firing", alert("breaker_open", "firing", 3))
    )
    verdict = run(notices, {1: 14, 2: 49, 3: 4})
    assert verdict.lines(verdict.unexpected) == [
        "success_rate_low (provider=anthropic) is not expected in storm of cycle 1: firing at 12:00:15 (storm of "
        "cycle 1) [default, discord]",
        "breaker_open (provider=anthropic) began at 12:00:49 (recovery of cycle 1), when no alert is expected: "
        "firing at 12:00:50 (recovery of cycle 1) [default, discord]",
        "breaker_open (provider=anthropic) began at 12:00:04 (calm of cycle 1), when no alert is expected: "
        "firing at 12:00:05 (calm of cycle 1) [default, discord]",
    ]
    assert list(verdict.in_calm) == ["firing message sent during calm at 12:00:05 (calm of cycle 1): breaker_open"]


def test_a_grouped_message_counts_once_per_rule_it_names() -> None:
    two_keys = (
        alert("breaker_open", "firing", 1, labels={**STORM, "key_label": "Primary"}),
        alert("breaker_open", "firing", 2, labels={**STORM, "key_label": "Backup 1"}),
    )
    resolved = tuple(alert("breaker_open", "resolved", a.episode_id, labels=dict(a.labels)) for a in two_keys)
    verdict = run(notice(12, "firing", *two_keys) + notice(45, "resolved", *resolved), {1: 11, 2: 11})
    assert verdict.missing_or_extra == {}
    assert verdict.counts[(0, "storm", 0, "default")].firing == 1


def test_an_optional_alert_may_come_but_then_exactly_once_and_resolved() -> None:
    verdict = run(
        notice(12, "firing", alert("breaker_open", "firing", 1))
        + notice(45, "resolved", alert("breaker_open", "resolved", 1))
        + notice(30, "firing", alert("probe_failures", "firing", 2)),
        {1: 11, 2: 29},
    )
    assert verdict.lines(verdict.missing_or_extra) == [
        "probe_failures (provider=anthropic) in storm of cycle 1: 1 firing and 0 resolved (expected 1 and 1, or "
        "none: the phase is shorter than the rule needs) [default, discord]"
    ]


@pytest.mark.parametrize(
    ("summary", "state", "value", "threshold", "compare", "problems"),
    [
        (
            "openai success rate 95.9 % < 95 % over 30s",
            "resolved",
            95.9,
            95,
            "below",
            ["says '95.9 % < 95', which is false"],
        ),
        ("openai success rate back to 96.1 % (≥ 95 %)", "resolved", 96.1, 95, "below", []),
        ("anthropic success rate 71.0 % < 95 %", "firing", 71.0, 95, "below", []),
        ("queue depth 1 234 > 100", "firing", 1234, 100, "above", []),
        ("share 3.1 % > 10 %", "resolved", 3.1, 10, "above", ["says '3.1 % > 10', which is false"]),
        ("key 'Primary' failed its last 0 probes (alert at 3)", "resolved", 0, 3, "at_least", []),
        (
            "resolved while still low",
            "resolved",
            80.0,
            95,
            "below",
            ["resolved at value 80, which still crosses its threshold 95"],
        ),
    ],
)
def test_false_statements_are_comparisons_its_own_numbers_contradict(
    summary: str, state: str, value: float, threshold: float, compare: str, problems: list[str]
) -> None:
    found = judge.false_statements(alert("r", state, 1, summary=summary, value=value, threshold=threshold), compare)
    assert found == problems


def test_a_resolved_key_alert_must_not_call_its_key_disabled() -> None:
    still = alert("key_unhealthy", "resolved", 1, summary="anthropic key 'Backup 2' is disabled (401), score 0.00")
    fine = alert("key_unhealthy", "resolved", 2, summary="anthropic key 'Backup 2' is healthy, score 100.00")
    statuses = ("unhealthy", "disabled")
    assert judge.false_statements(still, "state", statuses) == ["resolved while its text says the key is disabled"]
    assert judge.false_statements(fine, "state", statuses) == []


def test_calls_are_counted_in_the_phase_they_started_in() -> None:
    tallies = judge.calls_by_phase([(at(1), True), (at(11), False), (at(12), True), (at(70), True)], timeline())
    assert {k: (t.calls, t.answered) for k, t in tallies.items()} == {
        (0, "calm"): (1, 1),
        (0, "storm"): (2, 1),
        (-1, "outside"): (1, 1),
    }


def test_growth_is_the_last_sample_against_the_first_after_warm_up() -> None:
    growth = judge.growth_after([(0, 100), (60, 150), (120, 170), (180, 260), (240, 190)], warm_up_s=120)
    assert growth is not None
    assert (growth.at_warm_up, growth.last, growth.peak, growth.growth) == (170, 190, 260, 20)
    assert judge.growth_after([(0, 100), (60, 150)], warm_up_s=120) is None


def test_every_expected_alert_is_an_enabled_rule_of_the_demo_and_every_phase_is_listed() -> None:
    assert list(EXPECTED_ALERTS) == [name for name, _, _ in PHASE_PLAN]
    assert EXPECTED_ALERTS["calm"] == EXPECTED_ALERTS["recovery"] == ()
    raw = tomllib.loads(ALERT_RULES)
    raw.pop("channels")  # their URLs come from the demo's environment; only the rules matter here
    config = build_config(raw, load_settings({}, env_file=None))
    enabled = {rule.id for rule in config.rules}
    wanted = {e.rule_id for listed in EXPECTED_ALERTS.values() for e in listed}
    assert wanted <= enabled, f"not enabled in the demo's rules: {sorted(wanted - enabled)}"
