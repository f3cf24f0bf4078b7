"""Prices from the shipped table (and overrides), and the input-token estimate used for TPM reservations."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulsegate.core.errors import ConfigError
from pulsegate.core.pricing import PriceTable
from pulsegate.core.token_estimate import (
    TOKENS_PER_IMAGE,
    TOKENS_PER_MESSAGE,
    estimate_input_tokens,
    estimate_output_tokens,
)
from pulsegate.core.translate.usage import usage_from_anthropic


def test_cost_counts_cache_reads_and_writes_at_their_own_prices() -> None:
    table = PriceTable.load()
    cost = table.cost("anthropic", "claude-sonnet-4-6", 1_000_000, 100_000, 2_000_000, 400_000)
    assert cost == pytest.approx(3.0 + 1.5 + 0.6 + 1.5)


@pytest.mark.parametrize(
    ("provider", "model", "priced"),
    [
        ("anthropic", "claude-sonnet-4-6-20260217", True),
        ("anthropic", "claude-haiku-4-5-latest", True),
        ("openai", "gpt-4.1-2025-04-14", True),
        ("openai", "gpt-4.1-mini", True),
        ("anthropic", "claude-opus-4-9", False),  # no loose prefix matching onto an older family's price
        ("openai", "gpt-5.2", False),
        ("openai", "claude-sonnet-4-6", False),
    ],
)
def test_dated_ids_take_their_models_price_and_nothing_looser(provider: str, model: str, priced: bool) -> None:
    assert (PriceTable.load().price(provider, model) is not None) is priced


def test_unknown_model_costs_none_not_zero() -> None:
    assert PriceTable.load().cost("openai", "mystery", 10, 10) is None


def test_override_file_adds_and_replaces(tmp_path: Path) -> None:
    override = tmp_path / "prices.toml"
    override.write_text(
        '[openai]\n"gpt-4.1" = { input = 1.0, output = 2.0 }\n"house-model" = { input = 0.5, output = 0.5 }\n'
    )
    table = PriceTable.load(override)
    assert table.cost("openai", "gpt-4.1", 1_000_000, 1_000_000) == 3.0
    assert table.cost("openai", "house-model", 2_000_000, 0) == 1.0
    assert table.cost("anthropic", "claude-haiku-4-5", 1_000_000, 0) == 1.0


def test_a_bad_override_names_the_model_and_field(tmp_path: Path) -> None:
    override = tmp_path / "prices.toml"
    override.write_text(
        '[openai]\n"gpt-x" = { input = -1, output = 2, cachd = 1 }\n[gemini]\n"g" = { input = 1, output = 1 }\n'
    )
    with pytest.raises(ConfigError) as caught:
        PriceTable.load(override)
    assert caught.value.problems == [
        "openai.'gpt-x': unknown field(s) ['cachd']; "
        "expected ['input', 'output', 'cache_write', 'cache_read', 'cache_write_1h']",
        "openai.'gpt-x': input must be a non-negative number (USD per million tokens)",
        "[gemini]: expected a table named [anthropic] or [openai]",
    ]


def test_estimate_counts_text_images_and_tools() -> None:
    messages = [
        {"role": "user", "content": "x" * 400},
        {"role": "user", "content": [{"type": "text", "text": "y" * 40}, {"type": "image", "source": {}}]},
    ]
    estimate = estimate_input_tokens("s" * 80, messages)
    assert estimate == (80 + 400 + 40) // 4 + 2 * TOKENS_PER_MESSAGE + TOKENS_PER_IMAGE + 1
    with_tools = estimate_input_tokens(None, messages, [{"name": "weather", "input_schema": {"type": "object"}}])
    assert with_tools > estimate - 20


def test_one_hour_cache_writes_cost_twice_the_input_price_not_the_five_minute_rate() -> None:
    table = PriceTable.load()
    # sonnet: input 3, 5-minute write 3.75, 1-hour write 6 (USD per million); 400k writes, 100k of them 1-hour
    cost = table.cost("anthropic", "claude-sonnet-4-6", 0, 0, 0, 400_000, 100_000)
    assert cost == pytest.approx(300_000 * 3.75 / 1e6 + 100_000 * 6.0 / 1e6)


def test_a_table_without_a_one_hour_price_assumes_twice_the_input(tmp_path: Path) -> None:
    override = tmp_path / "prices.toml"
    override.write_text('[anthropic]\n"claude-custom" = { input = 1.0, output = 5.0, cache_write = 1.25 }\n')
    table = PriceTable.load(override)
    assert table.cost("anthropic", "claude-custom", 0, 0, 0, 1_000_000, 1_000_000) == pytest.approx(2.0)


def test_anthropic_usage_separates_the_one_hour_cache_writes() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 300,
            "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
        }
    )
    assert (usage.cache_write_tokens, usage.cache_write_1h_tokens, usage.total) == (300, 100, 315)


def test_the_output_estimate_of_a_partial_answer_rounds_up() -> None:
    assert [estimate_output_tokens(text) for text in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]
