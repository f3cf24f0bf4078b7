"""Probes through the real SDKs against the emulator, recorded to real SQLite and PostgreSQL stores.

The emulator's per-key stats are the ground truth of what reached "the provider": a probe is exactly one request
on exactly its key, whatever state the key is in, and never waits behind the live queue.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from pulsegate.core.keys.health import KeyStatus
from pulsegate.core.masking import fingerprint
from pulsegate.core.ops.probe import ProbeResult, ProbeTarget, probe_targets, run_probes
from pulsegate.core.pricing import PriceTable
from pulsegate.core.provider import Provider
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS, requests_by_key, rows

HAIKU = "claude-haiku-4-5"
NANO = "gpt-5-nano"
PRICES = PriceTable.load(None)


def _flush(client: AIClient) -> None:
    assert client.recorder.flush(), client.recorder.stats()


def _probe_rows(store: sa.Engine) -> dict[tuple[str, str], dict[str, Any]]:
    found = [row for row in rows(store)]
    assert all(row["source"] == "probe" for row in found)
    by_key = {(row["provider"], row["key_label"]): row for row in found}
    assert len(by_key) == len(found), "one row per probed key"
    return by_key


async def test_successful_probes_are_one_request_per_key_recorded_as_probe_rows(
    emu: EmulatorServer, store: sa.Engine, make_client: Callable[..., AIClient]
) -> None:
    client = make_client(anthropic=2, openai=1, store=store)
    targets = probe_targets(client.settings)
    assert targets == [
        ProbeTarget("anthropic", "Primary", HAIKU),
        ProbeTarget("anthropic", "Backup 1", HAIKU),
        ProbeTarget("openai", "Primary", NANO),
    ]

    results = await run_probes(client.probe, targets, concurrency=2)
    _flush(client)

    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {200: 1}, ANTHROPIC_KEYS[1]: {200: 1}}
    assert requests_by_key(emu, "openai.chat_completions") == {OPENAI_KEYS[0]: {200: 1}}
    stored = _probe_rows(store)
    assert sorted(stored) == [("anthropic", "Backup 1"), ("anthropic", "Primary"), ("openai", "Primary")]
    for result, secret in zip(results, [ANTHROPIC_KEYS[0], ANTHROPIC_KEYS[1], OPENAI_KEYS[0]], strict=True):
        row = stored[(result.provider, result.key_label)]
        # a two-letter prompt is one input token; max_tokens=1 is one output token
        expected_cost = PRICES.cost(result.provider, result.model, 1, 1, 0, 0)
        assert (result.ok, result.outcome, result.error_class, result.http_status) == (True, "success", None, 200)
        assert (result.input_tokens, result.output_tokens, result.message) == (1, 1, "ok")
        assert result.cost_usd == expected_cost
        assert row["source"] == "probe"
        assert (row["outcome"], row["error_class"], row["http_status"]) == ("success", None, 200)
        assert (row["model"], row["key_fingerprint"]) == (result.model, fingerprint(secret))
        assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (
            1,
            1,
            0,
            0,
        )
        assert row["cost_usd"] == pytest.approx(expected_cost, rel=1e-12) and row["unpriced"] is False
        assert (row["attempt"], row["is_final"], row["priority"], row["streamed"]) == (1, True, 1, False)
        assert row["queue_wait_ms"] == 0.0
        assert row["fell_back_from"] is None and row["user_id"] is None and row["feature"] is None
        assert row["call_id"] == uuid.UUID(result.call_id)
        assert row["ts"] == result.ts
        assert row["latency_ms"] == pytest.approx(result.latency_ms) and row["latency_ms"] > 0
        assert row["ttft_ms"] == pytest.approx(row["latency_ms"], abs=1.0)  # one token: the first is the whole answer
        assert row["request_id"] and row["instance_id"] == client.instance_id
    assert [r.cost_usd for r in results] == [6e-06, 6e-06, PRICES.cost("openai", NANO, 1, 1, 0, 0)]


@pytest.mark.parametrize(
    ("fault", "status", "error_class"),
    [
        ({"kind": "error", "status": 529}, 529, ErrorClass.OVERLOADED),
        ({"kind": "rate_limit", "retry_after": 7}, 429, ErrorClass.RATE_LIMITED),
        ({"kind": "server_error"}, 500, ErrorClass.SERVER_ERROR),
    ],
)
async def test_a_failed_probe_is_one_request_recorded_with_its_error_class(
    emu: EmulatorServer,
    store: sa.Engine,
    make_client: Callable[..., AIClient],
    fault: dict[str, Any],
    status: int,
    error_class: ErrorClass,
) -> None:
    emu.add_fault({**fault, "key": ANTHROPIC_KEYS[0]})  # every request on Primary fails: no retry may hide it
    client = make_client(anthropic=2, openai=0, store=store)

    (result,) = await run_probes(client.probe, [ProbeTarget("anthropic", "Primary", HAIKU)], concurrency=1)
    _flush(client)

    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {status: 1}}  # no retry, no other key
    assert (result.ok, result.outcome, result.error_class, result.http_status) == (
        False,
        "error",
        error_class.value,
        status,
    )
    assert (result.input_tokens, result.output_tokens, result.cost_usd) == (0, 0, 0.0)
    assert result.message.startswith(f"anthropic key 'Primary': {status} {error_class.value}: ")
    assert ANTHROPIC_KEYS[0] not in result.message
    row = _probe_rows(store)[("anthropic", "Primary")]
    assert (row["source"], row["outcome"], row["error_class"], row["http_status"]) == (
        "probe",
        "error",
        error_class.value,
        status,
    )
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"], row["ttft_ms"]) == (0, 0, 0.0, None)
    assert (row["attempt"], row["is_final"], row["call_id"]) == (1, True, uuid.UUID(result.call_id))


async def test_a_refused_key_is_disabled_by_its_probe_and_the_answer_names_no_secret(
    emu: EmulatorServer, store: sa.Engine, make_client: Callable[..., AIClient]
) -> None:
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[1]: {"behaviour": "invalid"}}})
    client = make_client(anthropic=2, openai=0, store=store)

    results = await run_probes(client.probe, probe_targets(client.settings), concurrency=4)
    _flush(client)

    ok, refused = results
    assert (ok.key_label, ok.ok) == ("Primary", True)
    assert (refused.key_label, refused.ok, refused.error_class, refused.http_status) == ("Backup 1", False, "auth", 401)
    assert refused.message == "anthropic key 'Backup 1': 401 auth: invalid x-api-key"
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {200: 1}, ANTHROPIC_KEYS[1]: {401: 1}}
    pool = client.pools[Provider.ANTHROPIC]
    health = pool.state(pool.by_label("Backup 1"))  # type: ignore[arg-type]
    assert health.disabled_reason == "auth: the provider refused this key"
    assert _probe_rows(store)[("anthropic", "Backup 1")]["error_class"] == "auth"


async def test_cooling_and_disabled_keys_are_still_probed(
    emu: EmulatorServer, store: sa.Engine, make_client: Callable[..., AIClient]
) -> None:
    client = make_client(anthropic=3, openai=0, store=store)
    pool = client.pools[Provider.ANTHROPIC]
    now = client.clock.monotonic()
    primary, backup1, backup2 = (pool.by_label(label) for label in ("Primary", "Backup 1", "Backup 2"))
    pool.state(primary).record_failure(now, ErrorClass.RATE_LIMITED, retry_after=600.0)  # type: ignore[arg-type]
    pool.state(backup1).disable("disabled by dashboard (command 3)")  # type: ignore[arg-type]
    pool.state(backup2).disable("auth: the provider refused this key", ErrorClass.AUTH)  # type: ignore[arg-type]
    assert pool.choose() is not None and pool.choose().wait_s > 500  # type: ignore[union-attr]  # live calls wait

    results = await run_probes(client.probe, probe_targets(client.settings), concurrency=3)
    _flush(client)

    assert [(r.key_label, r.ok) for r in results] == [("Primary", True), ("Backup 1", True), ("Backup 2", True)]
    assert requests_by_key(emu) == {key: {200: 1} for key in ANTHROPIC_KEYS[:3]}
    # a probe only observes: returning keys to service is restore_recovered_keys' control command
    assert pool.state(primary).status(client.clock.monotonic()) is KeyStatus.COOLDOWN  # type: ignore[arg-type]
    assert pool.state(backup1).status(client.clock.monotonic()) is KeyStatus.DISABLED  # type: ignore[arg-type]
    assert len(_probe_rows(store)) == 3


async def test_a_probe_does_not_wait_behind_a_full_queue_but_counts_toward_the_limit(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    clock = ManualClock()
    client = make_client(anthropic=1, openai=0, clock=clock, env={"ANTHROPIC_RPM": "1"})
    config = ModelConfig(model="claude-sonnet-4-6", max_tokens=16)
    hello = [{"role": "user", "content": "Hello"}]
    first = await client.generate_response(config, hello)  # the one request of this minute
    assert first.text
    waiting = [
        asyncio.create_task(client.generate_response(config, hello, options=CallOptions(priority=6))) for _ in range(3)
    ]
    for _ in range(400):
        await asyncio.sleep(0.005)
        if client.snapshot()["providers"]["anthropic"]["queue"]["depth"] == 3:
            break
    assert client.snapshot()["providers"]["anthropic"]["queue"]["depth"] == 3

    result = await asyncio.wait_for(client.probe(ProbeTarget("anthropic", "Primary", HAIKU)), timeout=10)

    assert (result.ok, result.http_status) == (True, 200)
    assert client.snapshot()["providers"]["anthropic"]["queue"]["depth"] == 3  # nobody moved; time did not pass
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {200: 2}}  # the live call and the probe
    rpm = client.snapshot()["providers"]["anthropic"]["limits"]["rpm"]
    assert rpm["remaining"] == 0.0 and rpm["reset_s"] == 120.0  # two requests charged at 1/min: full in 2 min
    assert client.clear_queue("anthropic") == 3
    for task in waiting:
        with pytest.raises(Exception, match="cleared"):
            await task


async def test_auth_check_skips_the_paid_request_for_a_refused_key(
    emu: EmulatorServer, store: sa.Engine, make_client: Callable[..., AIClient]
) -> None:
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[1]: {"behaviour": "invalid"}}})
    client = make_client(anthropic=2, openai=1, store=store, env={"PROBE_AUTH_CHECK": "true"})

    results = await run_probes(client.probe, probe_targets(client.settings), concurrency=4)
    _flush(client)

    assert [(r.provider, r.key_label, r.ok, r.http_status) for r in results] == [
        ("anthropic", "Primary", True, 200),
        ("anthropic", "Backup 1", False, 401),
        ("openai", "Primary", True, 200),
    ]
    assert requests_by_key(emu, "anthropic.models") == {ANTHROPIC_KEYS[0]: {200: 1}, ANTHROPIC_KEYS[1]: {401: 1}}
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {200: 1}}  # nothing paid on the refused key
    assert requests_by_key(emu, "openai.models") == {OPENAI_KEYS[0]: {200: 1}}
    assert requests_by_key(emu, "openai.chat_completions") == {OPENAI_KEYS[0]: {200: 1}}
    stored = _probe_rows(store)  # the free check leaves no row of its own: one row per probe
    assert len(stored) == 3
    refused = stored[("anthropic", "Backup 1")]
    assert (refused["outcome"], refused["error_class"], refused["http_status"], refused["cost_usd"]) == (
        "error",
        "auth",
        401,
        0.0,
    )
    assert refused["model"] == HAIKU
    assert stored[("anthropic", "Primary")]["output_tokens"] == 1


async def test_probe_of_an_unknown_key_raises_a_clear_error(make_client: Callable[..., AIClient]) -> None:
    client = make_client(anthropic=1, openai=0)
    with pytest.raises(ValueError, match=r"^key: no anthropic key labelled 'Backup 9' \(keys: 'Primary'\)$"):
        await client.probe(ProbeTarget("anthropic", "Backup 9", HAIKU))
    with pytest.raises(ValueError, match=r"^provider: unknown provider 'gemini'; expected one of anthropic, openai$"):
        await client.probe(ProbeTarget("gemini", "Primary", HAIKU))


async def test_run_probes_bounds_concurrency_and_keeps_target_order(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    emu.set_scenario({"latency": {"kind": "fixed", "ms": 150}})
    client = make_client(anthropic=4, openai=0)
    seen: list[int] = []
    real_probe = client.probe
    in_flight = 0

    async def counting(target: ProbeTarget, **kwargs: Any) -> ProbeResult:
        nonlocal in_flight
        in_flight += 1
        seen.append(in_flight)
        try:
            return await real_probe(target, **kwargs)
        finally:
            in_flight -= 1

    client.probe = counting  # type: ignore[method-assign]  # observes the real probe; replaces nothing
    targets = probe_targets(client.settings)
    results = await run_probes(client.probe, targets, concurrency=2)
    assert [r.key_label for r in results] == ["Primary", "Backup 1", "Backup 2", "Backup 3"]
    assert all(r.ok for r in results) and max(seen) == 2
