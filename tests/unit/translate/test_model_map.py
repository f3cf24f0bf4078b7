"""Model mapping both ways: defaults, prefix/glob matching, specificity, overrides, unmapped defaults."""

from __future__ import annotations

import pytest

from pulsegate.core.translate import DEFAULT_ANTHROPIC_MODEL, DEFAULT_OPENAI_MODEL, ModelMap


@pytest.mark.parametrize(
    ("anthropic_model", "openai_model"),
    [
        ("claude-sonnet-4-6", "gpt-4.1"),
        ("claude-sonnet-4-6-20260217", "gpt-4.1"),
        ("claude-sonnet-4-6@20260217", "gpt-4.1"),
        ("CLAUDE-SONNET-4-6", "gpt-4.1"),
        ("claude-opus-4-6", "gpt-4.1"),
        ("claude-opus-4-8", "gpt-4.1"),
        ("claude-opus-4-5-20251101", "gpt-4.1"),
        ("claude-opus-5", "gpt-4.1"),
        ("claude-opus-5-5", "gpt-4.1"),
        ("claude-haiku-4-5", "gpt-4.1-mini"),
        ("claude-haiku-4-5-20251001", "gpt-4.1-mini"),
    ],
)
def test_default_anthropic_to_openai(anthropic_model: str, openai_model: str) -> None:
    assert ModelMap().to_openai(anthropic_model) == openai_model


@pytest.mark.parametrize(
    ("openai_model", "anthropic_model"),
    [
        ("gpt-4.1", "claude-sonnet-4-6"),
        ("gpt-4.1-2025-04-14", "claude-sonnet-4-6"),
        ("gpt-4.1-mini", "claude-haiku-4-5"),
        ("gpt-4.1-mini-2025-04-14", "claude-haiku-4-5"),
        ("gpt-4.1-nano", "claude-haiku-4-5"),
        ("gpt-4.1-nano-2025-04-14", "claude-haiku-4-5"),
        ("gpt-4o", "claude-sonnet-4-6"),
        ("gpt-4o-mini", "claude-sonnet-4-6"),
        ("gpt-5", "claude-sonnet-4-6"),
        ("gpt-5.5", "claude-sonnet-4-6"),
        ("gpt-5-mini", "claude-sonnet-4-6"),
    ],
)
def test_default_openai_to_anthropic(openai_model: str, anthropic_model: str) -> None:
    assert ModelMap().to_anthropic(openai_model) == anthropic_model


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-60", "claude-sonnet-4", "claude-3-5-haiku-latest", "claude-fable-5-1", "mystery"]
)
def test_unmapped_anthropic_models_use_the_fallback_default(model: str) -> None:
    assert ModelMap().to_openai(model) == DEFAULT_OPENAI_MODEL == "gpt-4.1"
    assert ModelMap(fallback_default="gpt-4.1-mini").to_openai(model) == "gpt-4.1-mini"


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-3.5-turbo", "gpt-4.10", "davinci-002", "mystery"])
def test_unmapped_openai_models_use_the_anthropic_default(model: str) -> None:
    assert ModelMap().to_anthropic(model) == DEFAULT_ANTHROPIC_MODEL == "claude-sonnet-4-6"
    assert ModelMap(anthropic_default="claude-haiku-4-5").to_anthropic(model) == "claude-haiku-4-5"


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "o3-mini", "chatgpt-4o-latest", "ft:gpt-4.1:acme::x"])
def test_a_model_already_on_openai_passes_through_to_openai(model: str) -> None:
    assert ModelMap().to_openai(model) == model


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-5", "claude-3-haiku"])
def test_a_model_already_on_anthropic_passes_through_to_anthropic(model: str) -> None:
    assert ModelMap().to_anthropic(model) == model


def test_overrides_win_over_defaults_and_defaults_remain_underneath() -> None:
    model_map = ModelMap(
        {"claude-x": "gpt-y", "claude-sonnet-4-6": "gpt-5", "claude-opus-*": "gpt-5-pro"},
        {"gpt-4o*": "claude-opus-5", "gpt-4o-mini": "claude-haiku-4-5"},
        fallback_default="gpt-4.1",
    )
    assert model_map.to_openai("claude-x") == "gpt-y"
    assert model_map.to_openai("claude-x-20260101") == "gpt-y"
    assert model_map.to_openai("claude-sonnet-4-6-20260217") == "gpt-5"
    assert model_map.to_openai("claude-opus-4-8") == "gpt-5-pro"
    assert model_map.to_openai("claude-haiku-4-5") == "gpt-4.1-mini"
    assert model_map.to_openai("claude-unknown") == "gpt-4.1"
    assert model_map.to_anthropic("gpt-4o") == "claude-opus-5"
    assert model_map.to_anthropic("gpt-4o-mini-2024-07-18") == "claude-haiku-4-5"
    assert model_map.to_anthropic("gpt-4.1-nano") == "claude-haiku-4-5"


def test_a_catch_all_override_beats_every_default() -> None:
    model_map = ModelMap({"claude-*": "gpt-4o"})
    assert model_map.to_openai("claude-haiku-4-5") == "gpt-4o"
    assert model_map.to_openai("claude-sonnet-4-6") == "gpt-4o"


def test_more_specific_patterns_win_within_a_table() -> None:
    model_map = ModelMap(
        {"claude-*": "a", "claude-sonnet-*": "b", "claude-sonnet-4-6": "c", "claude-sonnet-4-6-2026*": "d"}
    )
    assert model_map.to_openai("claude-haiku-9") == "a"
    assert model_map.to_openai("claude-sonnet-5") == "b"
    assert model_map.to_openai("claude-sonnet-4-6") == "c"
    assert model_map.to_openai("claude-sonnet-4-6-20260217") == "d"


@pytest.mark.parametrize("overrides", [{"": "gpt-4.1"}, {"claude-x": ""}, {"claude-x": None}])
def test_bad_overrides_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        ModelMap(overrides)  # type: ignore[arg-type]


def test_repr_shows_the_configuration() -> None:
    assert "claude-x" in repr(ModelMap({"claude-x": "gpt-y"}))
