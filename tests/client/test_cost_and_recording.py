"""Cost per attempt and the attempt rows (issue 3, items 12 and 13), on SQLite and PostgreSQL.

Expected costs are computed here from the price table's numbers and the tokens the emulator reported — never by
calling the code under test — and every row is checked field by field.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig, NoUsableKeyError, Priority, ProviderError
from pulsegate.core.masking import fingerprint
from pulsegate.core.pricing import PriceTable
from pulsegate.core.recording import SqlRecorder
from pulsegate.core.retry import RetryPolicy, wait_exponential_full_jitter
from pulsegate.core.store import create_store_engine
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS, requests_by_key, rows

NO_WAIT = RetryPolicy(wait=wait_exponential_full_jitter(base_s=0.0, cap_s=0.0))
HELLO = [{"role": "user", "content": "Please summarise the quarterly report in two lines"}]
#: USD per million tokens, copied from core/data/prices.toml: (input, output, cache_write, cache_read).
SONNET_PRICE = (3.0, 15.0, 3.75, 0.30)
GPT41_PRICE = (2.0, 8.0, 2.0, 0.50)  # no cache_write price: it falls back to the input price
KEYS_BY_FINGERPRINT = {fingerprint(k): k for k in ANTHROPIC_KEYS + OPENAI_KEYS}
LABELS = ["Primary", "Backup 1", "Backup 2", "Backup 3"]


def expected_cost(price: tuple[float, float, float, float], row: dict[str, Any]) -> float:
    input_price, output_price, write_price, read_price = price
    return (
        row["input_tokens"] * input_price
        + row["output_tokens"] * output_price
        + row["cache_write_tokens"] * write_price
        + row["cache_read_tokens"] * read_price
    ) / 1_000_000


def output_tokens(text: str) -> int:
    """The emulator's documented token model for answers."""
    return len(re.findall(r"\s*\S{1,4}", text))


def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def sorted_rows(store: sa.Engine, client: AIClient) -> list[dict[str, Any]]:
    assert client.recorder.flush()
    return sorted(rows(store), key=lambda row: (row["ts"], row["attempt"]))


# --- cost -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "price"),
    [("anthropic", "claude-sonnet-4-6", SONNET_PRICE), ("openai", "gpt-4.1", GPT41_PRICE)],
)
async def test_cost_of_a_known_model_is_the_price_table_arithmetic(
    emu: EmulatorServer,
    make_client: Callable[..., AIClient],
    store: sa.Engine,
    provider: str,
    model: str,
    price: tuple[float, float, float, float],
) -> None:
    emu.set_scenario({"reply": {"extra_words": 30}})
    client = make_client(store=store)
    resp = await client.generate_response(
        ModelConfig(provider=provider, model=model, max_tokens=200), HELLO, system_prompt="Be brief."
    )

    (row,) = sorted_rows(store, client)
    assert row["output_tokens"] == output_tokens(resp.text) == resp.usage.output_tokens
    assert row["input_tokens"] == resp.usage.input_tokens > 0
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (0, 0)
    cost = expected_cost(price, row)
    assert cost > 0
    assert resp.cost_usd == pytest.approx(cost, rel=1e-9)
    assert row["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert row["unpriced"] is False


async def test_cache_writes_and_reads_are_priced(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    # one key: the emulator's prompt cache is per key
    client = make_client(anthropic=1, store=store)
    system = [
        {
            "type": "text",
            "text": "You answer questions about the handbook. " * 40,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    cfg = ModelConfig(model="claude-sonnet-4-6", max_tokens=64)
    first = await client.generate_response(cfg, HELLO, system_prompt=system)
    second = await client.generate_response(cfg, HELLO, system_prompt=system)

    write_row, read_row = sorted_rows(store, client)
    assert first.usage.cache_write_tokens > 0
    assert first.usage.cache_read_tokens == 0
    assert second.usage.cache_write_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens
    assert second.usage.input_tokens == first.usage.input_tokens  # the uncached rest is the same
    assert (write_row["cache_write_tokens"], write_row["cache_read_tokens"]) == (first.usage.cache_write_tokens, 0)
    assert (read_row["cache_write_tokens"], read_row["cache_read_tokens"]) == (0, second.usage.cache_read_tokens)

    assert write_row["cost_usd"] == pytest.approx(expected_cost(SONNET_PRICE, write_row), rel=1e-9)
    assert read_row["cost_usd"] == pytest.approx(expected_cost(SONNET_PRICE, read_row), rel=1e-9)
    assert first.cost_usd == pytest.approx(write_row["cost_usd"], rel=1e-9)
    assert second.cost_usd == pytest.approx(read_row["cost_usd"], rel=1e-9)
    # the cache prices are really used: reading is cheaper than writing, which is dearer than plain input
    cached = first.usage.cache_write_tokens
    assert first.cost_usd - second.cost_usd == pytest.approx(cached * (3.75 - 0.30) / 1_000_000, rel=1e-9)


@pytest.mark.parametrize(("provider", "model"), [("anthropic", "claude-mystery-9"), ("openai", "gpt-mystery-2")])
async def test_unknown_model_is_unpriced_never_free(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str, model: str
) -> None:
    client = make_client(store=store)
    resp = await client.generate_response(ModelConfig(provider=provider, model=model, max_tokens=32), HELLO)

    assert resp.model == model
    assert resp.usage.output_tokens > 0
    assert resp.cost_usd is None
    (row,) = sorted_rows(store, client)
    assert row["cost_usd"] is None
    assert row["unpriced"] is True
    assert row["output_tokens"] == resp.usage.output_tokens
    with store.connect() as connection:
        nulls = connection.execute(sa.text("SELECT COUNT(*) FROM api_usage_metrics WHERE cost_usd IS NULL")).scalar()
    assert nulls == 1


async def test_price_override_file_changes_the_cost(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, tmp_path: Path
) -> None:
    override = tmp_path / "prices.toml"
    override.write_text(
        '[anthropic]\n"claude-sonnet-4-6" = { input = 100.0, output = 1000.0 }\n'
        '"claude-mystery-9" = { input = 7.0, output = 70.0, cache_write = 9.0, cache_read = 0.7 }\n',
        encoding="utf-8",
    )
    client = make_client(store=store, prices=PriceTable.load(override))
    sonnet = await client.generate_response(ModelConfig(model="claude-sonnet-4-6", max_tokens=64), HELLO)
    mystery = await client.generate_response(ModelConfig(model="claude-mystery-9", max_tokens=64), HELLO)
    gpt = await client.generate_response(ModelConfig(provider="openai", model="gpt-4.1", max_tokens=64), HELLO)

    sonnet_row, mystery_row, gpt_row = sorted_rows(store, client)
    assert sonnet_row["cost_usd"] == pytest.approx(expected_cost((100.0, 1000.0, 100.0, 100.0), sonnet_row), rel=1e-9)
    assert sonnet.cost_usd == pytest.approx(sonnet_row["cost_usd"], rel=1e-9)
    assert sonnet.cost_usd != pytest.approx(expected_cost(SONNET_PRICE, sonnet_row))
    assert mystery_row["unpriced"] is False
    assert mystery.cost_usd == pytest.approx(expected_cost((7.0, 70.0, 9.0, 0.7), mystery_row), rel=1e-9)
    # models not in the override keep the shipped price
    assert gpt.cost_usd == pytest.approx(expected_cost(GPT41_PRICE, gpt_row), rel=1e-9)


async def test_each_attempt_is_priced_on_its_own(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    """A failed attempt used no tokens and costs 0 (known), the fallback attempt is priced at OpenAI's price."""
    emu.add_fault({"kind": "overloaded", "provider": "anthropic"})
    client = make_client(store=store, retry_policy=NO_WAIT)
    resp = await client.generate_response(
        ModelConfig(model="claude-sonnet-4-6", max_tokens=64), HELLO, options=CallOptions(fallback_to_openai=True)
    )
    first, second, third = sorted_rows(store, client)
    for failed in (first, second):
        assert (failed["input_tokens"], failed["output_tokens"], failed["cost_usd"], failed["unpriced"]) == (
            0,
            0,
            0.0,
            False,
        )
    assert third["model"] == "gpt-4.1"
    assert third["cost_usd"] == pytest.approx(expected_cost(GPT41_PRICE, third), rel=1e-9)
    assert resp.cost_usd == pytest.approx(third["cost_usd"], rel=1e-9)


# --- rows -------------------------------------------------------------------------------------------------------


async def test_every_attempt_row_is_complete(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault({"kind": "server_error", "provider": "anthropic", "count": 2})
    client = make_client(store=store, retry_policy=NO_WAIT, instance_id="web-1-test")
    options = CallOptions(user_id="u-42", feature="chat", priority=Priority.ADMIN)
    resp = await client.generate_response(ModelConfig(model="claude-sonnet-4-6", max_tokens=64), HELLO, options=options)
    other = await client.generate_response(ModelConfig(model="claude-haiku-4-5", max_tokens=64), HELLO)

    assert resp.attempts == 3
    assert client.instance_id == "web-1-test"
    all_rows = sorted_rows(store, client)
    assert len(all_rows) == 4
    call_rows = sorted((r for r in all_rows if str(r["call_id"]) == resp.call_id), key=lambda r: r["attempt"])
    other_rows = [r for r in all_rows if str(r["call_id"]) == other.call_id]
    assert len(call_rows) == 3 and len(other_rows) == 1
    assert resp.call_id != other.call_id

    assert [r["attempt"] for r in call_rows] == [1, 2, 3]
    assert [r["is_final"] for r in call_rows] == [False, False, True]
    assert [r["outcome"] for r in call_rows] == ["error", "error", "success"]
    assert [r["error_class"] for r in call_rows] == ["server_error", "server_error", None]
    assert [r["http_status"] for r in call_rows] == [500, 500, 200]
    # a server error counts against the key: each retry went to another key
    assert len({r["key_label"] for r in call_rows}) == 3

    for row in call_rows + other_rows:
        assert row["source"] == "live"
        assert row["instance_id"] == "web-1-test"
        assert row["provider"] == "anthropic"
        assert row["streamed"] is False
        assert row["latency_ms"] > 0
        assert row["queue_wait_ms"] is not None and row["queue_wait_ms"] >= 0
        assert re.fullmatch(r"[0-9a-f]{12}", row["key_fingerprint"])
        key = KEYS_BY_FINGERPRINT[row["key_fingerprint"]]
        assert row["key_label"] == LABELS[ANTHROPIC_KEYS.index(key)]
        assert row["fell_back_from"] is None
        assert row["ts"] is not None
    for row in call_rows:
        assert (row["user_id"], row["feature"], row["priority"]) == ("u-42", "chat", Priority.ADMIN)
        assert row["model"] == "claude-sonnet-4-6"
    assert (other_rows[0]["user_id"], other_rows[0]["feature"], other_rows[0]["priority"]) == (
        None,
        None,
        Priority.USER_FACING,
    )
    assert other_rows[0]["is_final"] is True and other_rows[0]["attempt"] == 1

    success = call_rows[-1]
    assert success["request_id"] == resp.request_id
    assert re.fullmatch(r"req_011C[0-9a-f]{20}", success["request_id"])
    assert re.fullmatch(r"req_011C[0-9a-f]{20}", other_rows[0]["request_id"])
    assert success["key_label"] == resp.key_label
    assert (success["input_tokens"], success["output_tokens"]) == (resp.usage.input_tokens, resp.usage.output_tokens)
    # the emulator saw exactly these three keys, one request each
    seen = requests_by_key(emu, "anthropic.messages")
    for row in call_rows:
        assert KEYS_BY_FINGERPRINT[row["key_fingerprint"]] in seen


async def test_openai_rows_carry_openai_request_ids(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    client = make_client(store=store)
    resp = await client.generate_response(ModelConfig(provider="openai", model="gpt-4.1-mini", max_tokens=32), HELLO)
    (row,) = sorted_rows(store, client)
    assert re.fullmatch(r"req_[0-9a-f]{32}", row["request_id"])
    assert row["request_id"] == resp.request_id
    assert row["key_fingerprint"] == fingerprint(OPENAI_KEYS[0])
    assert row["key_label"] == "Primary"


async def test_no_row_or_error_contains_an_api_key(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    client = make_client(anthropic=3, openai=2, store=store, retry_policy=NO_WAIT)
    errors: list[BaseException] = []
    # a provider error whose message quotes the key (real providers do: "Incorrect API key provided: sk-…")
    emu.add_fault({"kind": "error", "status": 400, "count": 1, "message": f"key {ANTHROPIC_KEYS[0]} is not allowed"})
    with pytest.raises(ProviderError) as bad:
        await client.generate_response(ModelConfig(model="claude-sonnet-4-6", max_tokens=32), HELLO)
    errors.append(bad.value)
    assert bad.value.http_status == 400

    emu.set_scenario(
        {
            "keys": {
                ANTHROPIC_KEYS[0]: {"behaviour": "invalid"},
                ANTHROPIC_KEYS[1]: {"behaviour": "permission"},
                ANTHROPIC_KEYS[2]: {"behaviour": "billing"},
                OPENAI_KEYS[0]: {"behaviour": "invalid"},
                OPENAI_KEYS[1]: {"behaviour": "quota"},
            }
        }
    )
    for cfg in (
        ModelConfig(model="claude-sonnet-4-6", max_tokens=32),
        ModelConfig(provider="openai", model="gpt-4.1", max_tokens=32),
    ):
        with pytest.raises(NoUsableKeyError) as caught:
            await client.generate_response(cfg, HELLO)
        errors.append(caught.value)

    all_rows = sorted_rows(store, client)
    assert {r["error_class"] for r in all_rows} >= {"auth", "quota", "no_usable_key"}
    secrets = ANTHROPIC_KEYS + OPENAI_KEYS
    texts = [repr(value) for row in all_rows for value in row.values()]
    for error in errors:
        chain: BaseException | None = error
        while chain is not None:
            texts += [str(chain), repr(chain)]
            chain = chain.__cause__ or chain.__context__
    assert texts
    for text in texts:
        for secret in secrets:
            assert secret not in text
            assert secret[-12:] not in text  # not even a long tail of it
    # the error names the provider and why each key is out, by label
    assert "Primary" in str(errors[1]) and "Backup 2" in str(errors[1]) and "anthropic" in str(errors[1])


async def test_a_broken_recorder_never_breaks_the_call(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    unreachable = create_store_engine("postgresql+psycopg://postgres@127.0.0.1:1/x")
    recorder = SqlRecorder(unreachable, interval_s=0.02)
    client = make_client(recorder=recorder)
    try:
        started = time.monotonic()
        resp = await client.generate_response(ModelConfig(model="claude-sonnet-4-6", max_tokens=32), HELLO)
        answered = await client.generate_response(ModelConfig(provider="openai", model="gpt-4.1", max_tokens=32), HELLO)
        assert time.monotonic() - started < 2.0  # the call never waited for the database
        assert resp.text.startswith("This is an emulated reply")
        assert answered.provider == "openai"

        await asyncio.to_thread(wait_until, lambda: recorder.stats()["write_failures"] > 0, 5.0)
        stats = recorder.stats()
        assert stats["write_failures"] > 0
        assert stats["written"] == 0
        assert stats["dropped"] == 0
        assert stats["buffered"] == 2  # kept for a retry, not lost
    finally:
        # the database comes back: the kept rows are written and the recorder can close
        recorder.engine = store
        assert await asyncio.to_thread(recorder.flush, 5.0)
        unreachable.dispose()
    assert recorder.stats()["written"] == 2
    assert {str(r["call_id"]) for r in rows(store)} == {resp.call_id, answered.call_id}
