"""What gets probed, on which model, how often, with which arguments — and the table ``pulsegate probe`` prints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pulsegate.core.ops.probe import (
    ProbeError,
    ProbeResult,
    ProbeTarget,
    format_probe_table,
    probe_interval_s,
    probe_targets,
    reasoning_off,
)
from pulsegate.core.provider import Provider
from pulsegate.core.settings import load_settings

ENV = {
    "ANTHROPIC_API_KEY": "sk-ant-one-" + "a" * 24,
    "ANTHROPIC_API_KEY_2": "sk-ant-two-" + "b" * 24,
    "OPENAI_API_KEY": "sk-oai-one-" + "c" * 24,
}


def test_every_configured_key_on_its_providers_probe_model() -> None:
    settings = load_settings({**ENV, "OPENAI_PROBE_MODEL": "gpt-4.1-nano"}, env_file=None)
    assert probe_targets(settings) == [
        ProbeTarget("anthropic", "Primary", "claude-haiku-4-5"),
        ProbeTarget("anthropic", "Backup 1", "claude-haiku-4-5"),
        ProbeTarget("openai", "Primary", "gpt-4.1-nano"),
    ]
    assert probe_targets(settings, provider="openai") == [ProbeTarget("openai", "Primary", "gpt-4.1-nano")]
    assert probe_targets(settings, key_label="Primary", model="m-1") == [
        ProbeTarget("anthropic", "Primary", "m-1"),
        ProbeTarget("openai", "Primary", "m-1"),
    ]
    assert probe_targets(settings, provider="anthropic", key_label="Backup 1") == [
        ProbeTarget("anthropic", "Backup 1", "claude-haiku-4-5")
    ]
    assert probe_targets(load_settings({}, env_file=None)) == []  # nothing configured: nothing to probe


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "gemini"}, "provider: unknown provider 'gemini'; expected one of anthropic, openai"),
        (
            {"key_label": "Backup 4"},
            "key: no key labelled 'Backup 4' is configured "
            "(keys: anthropic 'Primary', anthropic 'Backup 1', openai 'Primary')",
        ),
        (
            {"provider": "openai", "key_label": "Backup 1"},
            "key: no openai key labelled 'Backup 1' is configured (keys: openai 'Primary')",
        ),
        ({"model": " "}, "model: expected a non-empty string, got ' '"),
        ({"key_label": "x" * 65}, "key: at most 64 characters, got 65"),
    ],
)
def test_a_filter_that_matches_nothing_names_what_exists(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ProbeError) as caught:
        probe_targets(load_settings(ENV, env_file=None), **kwargs)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_intervals_per_provider_fall_back_to_the_shared_one() -> None:
    settings = load_settings({"PROBE_INTERVAL_S": "120", "OPENAI_PROBE_INTERVAL_S": "600"}, env_file=None)
    assert probe_interval_s(settings, Provider.ANTHROPIC) == 120.0
    assert probe_interval_s(settings, Provider.OPENAI) == 600.0
    assert probe_interval_s(load_settings({}, env_file=None), Provider.ANTHROPIC) == 300.0


@pytest.mark.parametrize(
    ("provider", "model", "extra"),
    [
        (Provider.ANTHROPIC, "claude-haiku-4-5", {}),  # Anthropic thinks only when asked
        (Provider.OPENAI, "gpt-5-nano", {"reasoning_effort": "minimal"}),
        (Provider.OPENAI, "gpt-5-mini-2025-08-07", {"reasoning_effort": "minimal"}),
        (Provider.OPENAI, "gpt-5.1", {"reasoning_effort": "none"}),
        (Provider.OPENAI, "gpt-5.4-nano", {"reasoning_effort": "none"}),
        (Provider.OPENAI, "o4-mini", {"reasoning_effort": "low"}),
        (Provider.OPENAI, "gpt-4.1-nano", {}),  # not a reasoning model: the parameter would be a 400
        (Provider.OPENAI, "gpt-5-pro", {}),
    ],
)
def test_reasoning_is_turned_off_as_far_as_each_model_allows(
    provider: Provider, model: str, extra: dict[str, str]
) -> None:
    assert reasoning_off(provider, model) == extra


def test_the_table_lines_up_and_counts_passes() -> None:
    ts = datetime(2026, 3, 1, tzinfo=UTC)
    common = {"latency_ms": 41.6, "call_id": "c", "ts": ts, "model": "claude-haiku-4-5", "provider": "anthropic"}
    ok = ProbeResult(
        key_label="Primary", ok=True, outcome="success", error_class=None, http_status=200, input_tokens=1,
        output_tokens=1, cost_usd=6e-06, message="ok", **common,  # type: ignore[arg-type]
    )  # fmt: skip
    failed = ProbeResult(
        key_label="Backup 1", ok=False, outcome="error", error_class="overloaded", http_status=529, input_tokens=0,
        output_tokens=0, cost_usd=0.0, message="anthropic key 'Backup 1': 529 overloaded: Overloaded",
        **common,  # type: ignore[arg-type]
    )  # fmt: skip
    unpriced = ProbeResult(
        key_label="Backup 2", ok=True, outcome="success", error_class=None, http_status=200, input_tokens=1,
        output_tokens=1, cost_usd=None, message="ok", **common,  # type: ignore[arg-type]
    )  # fmt: skip
    assert format_probe_table([ok, failed, unpriced]).splitlines() == [
        "provider   key       model             result  status  latency  tokens  cost       detail",
        "anthropic  Primary   claude-haiku-4-5  ok      200     42 ms    1+1     $0.000006  ok",
        "anthropic  Backup 1  claude-haiku-4-5  FAIL    529     42 ms    0+0     $0         anthropic key 'Backup 1': "
        "529 overloaded: Overloaded",
        "anthropic  Backup 2  claude-haiku-4-5  ok      200     42 ms    1+1     unpriced   ok",
        "2/3 passed",
    ]
    assert ok.to_json() == {
        "provider": "anthropic",
        "key_label": "Primary",
        "model": "claude-haiku-4-5",
        "ok": True,
        "outcome": "success",
        "error_class": None,
        "http_status": 200,
        "latency_ms": 41.6,
        "input_tokens": 1,
        "output_tokens": 1,
        "cost_usd": 6e-06,
        "message": "ok",
        "call_id": "c",
        "ts": "2026-03-01T00:00:00+00:00",
    }
