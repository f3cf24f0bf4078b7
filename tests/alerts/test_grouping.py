"""Grouping (one message per group and channel), inhibition (provider-wide mutes per-key) and silences."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.evaluator import AlertEvaluator, fingerprint
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.alerts.silences import create_silence, expire_silence
from pulsegate.core.clock import ManualClock
from tests.alerts.support import (
    OPS,
    PAGER,
    START,
    assert_resolved_text,
    beat,
    config,
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


KEY_RULE = Rule(id="key_unhealthy", kind="key_unhealthy", scope="key", title="Key unhealthy")
PROVIDER_RULE = Rule(
    id="provider_keys_unavailable",
    kind="provider_all_keys_unavailable",
    severity="critical",
    title="Every key unavailable",
)
LABELS = ("Primary", "Backup 1", "Backup 2")


def _key_fp(provider: str, label: str) -> str:
    return fingerprint("key_unhealthy", {"provider": provider, "key_label": label})


def _anthropic(statuses: dict[str, str], *, openai: dict[str, str] | None = None) -> dict:
    providers = {"anthropic": provider_state(key_state(label, statuses.get(label, "healthy")) for label in LABELS)}
    if openai is not None:
        providers["openai"] = provider_state(key_state(label, status) for label, status in openai.items())
    return providers


def _step(store: sa.Engine, engine: AlertEvaluator, clock: ManualClock, seconds: float, providers: dict):
    clock.advance(seconds)
    beat(store, clock.now(), providers)
    return run(engine, clock)


def test_alerts_that_start_within_group_wait_go_out_as_one_message(store: sa.Engine, clock: ManualClock) -> None:
    engine = AlertEvaluator(store, config(KEY_RULE, group_wait_s=30), clock)
    report = _step(store, engine, clock, 0, _anthropic({"Primary": "unhealthy"}))
    assert report.fired == [_key_fp("anthropic", "Primary")] and report.notifications == 0
    _step(store, engine, clock, 10, _anthropic({"Primary": "unhealthy", "Backup 1": "unhealthy"}))
    _step(store, engine, clock, 10, _anthropic(dict.fromkeys(LABELS, "unhealthy")))
    assert outbox(store) == []
    report = _step(store, engine, clock, 10, _anthropic(dict.fromkeys(LABELS, "unhealthy")))
    assert report.notifications == 1
    [row] = outbox(store)
    assert (row["transition"], row["channel"], row["group_key"], row["episode_ids"]) == (
        "firing",
        "ops",
        "key_unhealthy/provider=anthropic",
        [1, 2, 3],
    )
    message = row["message"]
    assert message["title"] == "[FIRING] Key unhealthy · anthropic · 3 alerts"
    assert [a["labels"] for a in message["alerts"]] == [
        {"provider": "anthropic", "key_label": label} for label in LABELS
    ]
    assert [a["summary"] for a in message["alerts"]] == [
        f"anthropic key {label!r} is unhealthy, score 1.00" for label in LABELS
    ]

    # A fourth alert later starts its own wait and goes out alone; the first three are not repeated.
    both = {"openai": {"Main": "unhealthy"}}
    _step(store, engine, clock, 10, _anthropic(dict.fromkeys(LABELS, "unhealthy"), **both))
    assert len(outbox(store)) == 1
    _step(store, engine, clock, 30, _anthropic(dict.fromkeys(LABELS, "unhealthy"), **both))
    assert sent(store)[1:] == [("firing", "ops", "key_unhealthy/provider=openai", [_key_fp("openai", "Main")])]

    # All recover in one evaluation: one resolved message per group.
    report = _step(store, engine, clock, 10, _anthropic({}, openai={"Main": "healthy"}))
    assert sorted(report.resolved) == sorted(
        [*(_key_fp("anthropic", label) for label in LABELS), _key_fp("openai", "Main")]
    )
    assert [(t, g, len(fps)) for t, _, g, fps in sent(store)[2:]] == [
        ("resolved", "key_unhealthy/provider=anthropic", 3),
        ("resolved", "key_unhealthy/provider=openai", 1),
    ]


def test_a_provider_wide_alert_inhibits_that_providers_key_alerts(store: sa.Engine, clock: ManualClock) -> None:
    engine = AlertEvaluator(store, config(KEY_RULE, PROVIDER_RULE, channels=(OPS, PAGER), group_wait_s=30), clock)
    down = {"Primary": "unhealthy", "Backup 1": "disabled", "Backup 2": "cooldown"}
    provider_fp = fingerprint("provider_keys_unavailable", {"provider": "anthropic"})
    openai = {"Main": "unhealthy", "Spare": "healthy"}
    report = _step(store, engine, clock, 0, _anthropic(down, openai=openai))
    assert sorted(report.fired) == sorted(
        [provider_fp, _key_fp("anthropic", "Primary"), _key_fp("anthropic", "Backup 1"), _key_fp("openai", "Main")]
    )
    report = _step(store, engine, clock, 30, _anthropic(down, openai=openai))
    assert sorted(report.inhibited) == sorted([_key_fp("anthropic", "Primary"), _key_fp("anthropic", "Backup 1")])
    assert sorted((t, c, g) for t, c, g, _ in sent(store)) == [
        ("firing", "ops", "key_unhealthy/provider=openai"),
        ("firing", "ops", "provider_keys_unavailable/provider=anthropic"),
        ("firing", "pager", "provider_keys_unavailable/provider=anthropic"),
    ]
    provider_message = next(r["message"] for r in outbox(store) if r["group_key"].startswith("provider"))
    assert (
        provider_message["alerts"][0]["summary"]
        == "all 3 anthropic keys unavailable (unhealthy 1, cooldown 1, disabled 1)"
    )
    status = {a.fingerprint: a for a in engine.status(clock.now())}
    assert status[_key_fp("anthropic", "Primary")].inhibited_by == provider_fp
    assert status[_key_fp("openai", "Main")].inhibited_by is None

    # One key back: the provider alert resolves, and the per-key alerts still firing are notified now.
    recovering = {"Primary": "unhealthy", "Backup 1": "disabled", "Backup 2": "healthy"}
    report = _step(store, engine, clock, 10, _anthropic(recovering, openai=openai))
    assert report.resolved == [provider_fp]
    assert sorted((t, c, g, len(fps)) for t, c, g, fps in sent(store)[3:]) == [
        ("firing", "ops", "key_unhealthy/provider=anthropic", 2),
        ("resolved", "ops", "provider_keys_unavailable/provider=anthropic", 1),
        ("resolved", "pager", "provider_keys_unavailable/provider=anthropic", 1),
    ]
    resolved = next(r for r in outbox(store) if r["transition"] == "resolved")
    assert_resolved_text(resolved, "anthropic: 1 of 3 keys available")


def test_silenced_alerts_change_state_but_are_not_notified(store: sa.Engine, clock: ManualClock) -> None:
    engine = AlertEvaluator(store, config(KEY_RULE, group_wait_s=0), clock)
    silence = create_silence(
        store,
        {"rule_id": "key_unhealthy", "provider": "anthropic"},
        ends_at=clock.now() + timedelta(hours=1),
        created_by="cli",
        comment="maintenance",
        now=clock.now(),
    )
    report = _step(store, engine, clock, 0, _anthropic({"Primary": "unhealthy"}, openai={"Main": "unhealthy"}))
    assert report.silenced == [_key_fp("anthropic", "Primary")]
    assert sent(store) == [("firing", "ops", "key_unhealthy/provider=openai", [_key_fp("openai", "Main")])]
    status = {a.fingerprint: a for a in engine.status(clock.now())}
    assert status[_key_fp("anthropic", "Primary")].silenced_by == (silence,)
    assert status[_key_fp("anthropic", "Primary")].state == "firing"
    assert status[_key_fp("openai", "Main")].silenced_by == ()

    _step(store, engine, clock, 60, _anthropic({"Primary": "unhealthy"}, openai={"Main": "unhealthy"}))
    assert len(outbox(store)) == 1
    assert expire_silence(store, silence, clock.now()) is True
    report = _step(store, engine, clock, 10, _anthropic({"Primary": "unhealthy"}, openai={"Main": "unhealthy"}))
    assert report.silenced == [] and report.notifications == 1
    assert sent(store)[1] == ("firing", "ops", "key_unhealthy/provider=anthropic", [_key_fp("anthropic", "Primary")])


def test_a_silence_ending_on_its_own_lets_the_alert_through(store: sa.Engine, clock: ManualClock) -> None:
    engine = AlertEvaluator(store, config(KEY_RULE, group_wait_s=0), clock)
    create_silence(
        store,
        {"key_label": "Primary"},
        ends_at=clock.now() + timedelta(minutes=5),
        created_by="dashboard",
        now=clock.now(),
    )
    _step(store, engine, clock, 0, _anthropic({"Primary": "unhealthy"}))
    _step(store, engine, clock, 290, _anthropic({"Primary": "unhealthy"}))
    assert outbox(store) == []
    _step(store, engine, clock, 10, _anthropic({"Primary": "unhealthy"}))
    assert [t for t, *_ in sent(store)] == ["firing"]
