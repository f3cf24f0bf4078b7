"""Provider chaos from the emulator (issue 10, Faults): every fault kind it can inject, on both providers, streamed
and not, through ``AIClient`` and the real SDKs over HTTP.

For each fault the call either fails with one named error class or falls back — never "unknown", never an
unclassified exception — and it ends within its deadline (``timeout_s``, measured on the real clock: stalls are
real). Every attempt row carries a known class. A storm of mixed faults at concurrency opens the breaker, falls back
while it is open, and a healthy trial closes it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.errors import CallError, ErrorClass
from pulsegate.core.keys import HealthPolicy
from pulsegate.core.provider import Provider
from pulsegate.core.retry import RetryPolicy, wait_exponential_full_jitter
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import rows

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Tell me a short story about a lighthouse keeper"}]
CONFIGS = {
    "anthropic": ModelConfig(provider="anthropic", model="claude-sonnet-4-6", max_tokens=64),
    "openai": ModelConfig(provider="openai", model="gpt-4.1", max_tokens=64),
}
OTHER = {"anthropic": "openai", "openai": "anthropic"}
DEADLINE_S = 1.0
#: What the measured end of a call may exceed its deadline by: the event loop's scheduling on a busy machine.
SLACK_S = 0.3
#: Retries without waiting: backoff timing is tested in tests/client; here only the outcome and the deadline count.
NO_WAIT = RetryPolicy(wait=wait_exponential_full_jitter(base_s=0.0, cap_s=0.0))
#: Stream events before the first text delta: Anthropic message_start, content_block_start, ping; OpenAI the role
#: chunk. ``after_events=1`` breaks a stream before any text, ``5`` after some text reached the caller.
EARLY, LATE = 1, 5

KNOWN = {member.value for member in ErrorClass}

# (id, fault table, streamed, error class without fallback, outcome with fallback: "fell_back" or an error class).
# A failure before any text is retried and falls back like any call; once text reached the caller it cannot be
# taken back (stream_interrupted, with the partial text). A stall eats the whole deadline: no time is left to fall
# back, so the call ends on time with deadline_exceeded.
CASES: list[tuple[str, dict[str, Any], bool, str, str]] = [
    ("overloaded-529-storm", {"kind": "overloaded"}, False, "overloaded", "fell_back"),
    ("overloaded-stream", {"kind": "overloaded"}, True, "overloaded", "fell_back"),
    # every key answers 429 and then cools for 30 s, past the deadline: the call ends refused here, not with a 429
    ("429-long-retry-after", {"kind": "rate_limit", "retry_after": 30}, False, "keys_cooling_down", "fell_back"),
    ("429-long-retry-after-stream", {"kind": "rate_limit", "retry_after": 30}, True, "keys_cooling_down", "fell_back"),
    ("server-error-500", {"kind": "server_error"}, False, "server_error", "fell_back"),
    ("bad-gateway-502", {"kind": "error", "status": 502}, False, "server_error", "fell_back"),
    ("unavailable-503", {"kind": "unavailable"}, False, "overloaded", "fell_back"),
    ("gateway-timeout-504", {"kind": "gateway_timeout"}, True, "timeout", "fell_back"),
    ("slow-stall", {"kind": "stall", "seconds": 5}, False, "deadline_exceeded", "deadline_exceeded"),
    ("slow-stall-stream", {"kind": "stall", "seconds": 5}, True, "deadline_exceeded", "deadline_exceeded"),
    ("connection-reset", {"kind": "reset"}, False, "connection", "fell_back"),
    ("connection-reset-stream", {"kind": "reset"}, True, "connection", "fell_back"),
    ("malformed-json", {"kind": "malformed_json", "stream": False}, False, "server_error", "fell_back"),
    (
        "malformed-json-stream-early",
        {"kind": "malformed_json", "after_events": EARLY},
        True,
        "server_error",
        "fell_back",
    ),
    (
        "malformed-json-stream-late",
        {"kind": "malformed_json", "after_events": LATE},
        True,
        "stream_interrupted",
        "stream_interrupted",
    ),
    ("truncated-stream-early", {"kind": "truncate_stream", "after_events": EARLY}, True, "server_error", "fell_back"),
    (
        "truncated-stream-late",
        {"kind": "truncate_stream", "after_events": LATE},
        True,
        "stream_interrupted",
        "stream_interrupted",
    ),
    (
        "stalled-stream-early",
        {"kind": "stall_stream", "seconds": 5, "after_events": EARLY},
        True,
        "deadline_exceeded",
        "deadline_exceeded",
    ),
    (
        "stalled-stream-late",
        {"kind": "stall_stream", "seconds": 5, "after_events": LATE},
        True,
        "stream_interrupted",
        "stream_interrupted",
    ),
    ("mid-stream-error-early", {"kind": "stream_error", "after_events": EARLY}, True, "by-provider", "fell_back"),
    (
        "mid-stream-error-late",
        {"kind": "stream_error", "after_events": LATE},
        True,
        "stream_interrupted",
        "stream_interrupted",
    ),
]
#: A stream's error event before any text: Anthropic sends ``overloaded_error``, OpenAI a ``server_error`` chunk.
STREAM_ERROR_CLASS = {"anthropic": "overloaded", "openai": "server_error"}
#: The last row of a call the deadline ended mid-attempt says what the attempt saw: the provider did not answer in time.
FINAL_ROW_CLASS = {"deadline_exceeded": "timeout"}


async def call(client: AIClient, provider: str, streamed: bool, options: CallOptions) -> Any:
    if not streamed:
        return await client.generate_response(CONFIGS[provider], MESSAGES, options=options)
    async with client.stream_response(CONFIGS[provider], MESSAGES, options=options) as stream:
        async for _ in stream:
            pass
    return stream.response


async def timed(client: AIClient, provider: str, streamed: bool, options: CallOptions) -> tuple[str, Any, float]:
    """(outcome, response, seconds): outcome is "fell_back", "ok" or the error class of the CallError raised."""
    started = time.monotonic()
    try:
        response = await call(client, provider, streamed, options)
    except CallError as error:
        return error.error_class.value, None, time.monotonic() - started
    return ("fell_back" if response.fell_back else "ok"), response, time.monotonic() - started


def assert_every_row_classified(attempt_rows: list[dict[str, Any]]) -> None:
    for row in attempt_rows:
        if row["outcome"] == "success":
            assert row["error_class"] is None, row
        else:
            assert row["error_class"] in KNOWN, row  # never NULL, never "unknown"
    by_call: dict[Any, list[dict[str, Any]]] = {}
    for row in attempt_rows:
        by_call.setdefault(row["call_id"], []).append(row)
    for call_rows in by_call.values():
        assert sum(bool(row["is_final"]) for row in call_rows) == 1, call_rows


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("fault", "streamed", "alone", "with_fallback"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_every_fault_is_classified_ends_by_its_deadline_and_falls_back(
    emu: EmulatorServer,
    make_client: Callable[..., AIClient],
    store: sa.Engine,
    provider: str,
    fault: dict[str, Any],
    streamed: bool,
    alone: str,
    with_fallback: str,
) -> None:
    emu.add_fault({**fault, "provider": provider})  # every request to this provider, every key
    client = make_client(anthropic=2, openai=2, store=store, retry_policy=NO_WAIT)
    expected = STREAM_ERROR_CLASS[provider] if alone == "by-provider" else alone

    # a stream's deadline covers its first delta; its total bound is set to the same here, so every call ends by it
    bounds = {"timeout_s": DEADLINE_S, "stream_total_timeout_s": DEADLINE_S}
    outcome, _, took = await timed(client, provider, streamed, CallOptions(**bounds))
    assert outcome == expected
    assert took <= DEADLINE_S + SLACK_S, took

    fallback = {f"fallback_to_{OTHER[provider]}": True}
    outcome, response, took = await timed(client, provider, streamed, CallOptions(**bounds, **fallback))
    assert outcome == with_fallback
    assert took <= DEADLINE_S + SLACK_S, took
    if response is not None:
        assert (response.provider, response.fallback_from) == (OTHER[provider], provider)

    assert client.recorder.flush()
    attempt_rows = rows(store)
    assert_every_row_classified(attempt_rows)
    assert len({row["call_id"] for row in attempt_rows}) == 2
    finals = sorted(
        (row for row in attempt_rows if row["is_final"]), key=lambda row: row["ts"]
    )  # the call without fallback ended first
    assert [row["error_class"] for row in finals] == [
        FINAL_ROW_CLASS.get(expected, expected),
        None if with_fallback == "fell_back" else FINAL_ROW_CLASS.get(with_fallback, with_fallback),
    ]
    assert emu.stats()["faults"], "the fault never fired"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
async def test_a_mixed_storm_opens_the_breaker_falls_back_and_a_healthy_trial_closes_it(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    """Forty concurrent calls, half streamed, into Anthropic answering with every fault kind at once (no stalls:
    they are the deadline's business above, and no 429s: they cool keys, not the breaker); then the storm ends and
    the breaker closes on one trial. Key cooldowns are kept out of this story: they would outlast the open period."""
    storm = [
        {"kind": "overloaded", "rate": 0.25},
        {"kind": "reset", "rate": 0.15},
        {"kind": "malformed_json", "rate": 0.15, "after_events": EARLY},
        {"kind": "truncate_stream", "rate": 0.3, "after_events": EARLY},
        {"kind": "stream_error", "rate": 0.3, "after_events": LATE},
        {"kind": "server_error", "rate": 0.3},
    ]
    emu.set_scenario({"seed": 7, "faults": [{**f, "provider": "anthropic"} for f in storm]})
    transitions: list[tuple[str, str]] = []
    breaker = {"window_s": 60, "min_calls": 10, "failure_rate": 0.5, "open_s": 1.0, "max_open_s": 1.0}
    no_cooldowns = HealthPolicy(failures_before_cooldown=1000)
    client = make_client(
        anthropic=3, openai=1, store=store, retry_policy=NO_WAIT, breaker=breaker, health_policy=no_cooldowns
    )
    client.breakers[Provider.ANTHROPIC].on_transition = lambda _name, old, new: transitions.append((old, new))
    options = CallOptions(timeout_s=5.0, fallback_to_openai=True)

    async def one(index: int) -> tuple[str, Any, float]:
        return await timed(client, "anthropic", index % 2 == 1, options)

    results = await asyncio.gather(*(one(i) for i in range(40)))
    outcomes = [outcome for outcome, _, _ in results]
    assert all(took <= 5.0 + SLACK_S for _, _, took in results)
    assert set(outcomes) <= {"ok", "fell_back", "stream_interrupted"}, outcomes
    assert outcomes.count("fell_back") >= 20, outcomes
    assert client.breakers[Provider.ANTHROPIC].state == "open"
    assert transitions[0] == ("closed", "open")
    anthropic_seen = emu.stats()["routes"]["anthropic.messages"]

    # while open: straight to OpenAI, nothing more reaches Anthropic
    outcome, response, _ = await timed(client, "anthropic", False, options)
    assert (outcome, response.provider) == ("fell_back", "openai")
    assert emu.stats()["routes"]["anthropic.messages"] == anthropic_seen

    emu.set_scenario({})  # the storm is over
    await asyncio.sleep(1.05)  # the breaker's open period (real time)
    outcome, response, _ = await timed(client, "anthropic", True, options)
    assert (outcome, response.provider) == ("ok", "anthropic")  # the trial
    assert client.breakers[Provider.ANTHROPIC].state == "closed"
    assert transitions[-2:] == [("open", "half_open"), ("half_open", "closed")]

    assert client.recorder.flush()
    attempt_rows = rows(store)
    assert_every_row_classified(attempt_rows)
    assert len({row["call_id"] for row in attempt_rows}) == 42
    classes = {row["error_class"] for row in attempt_rows} - {None}
    assert {"overloaded", "connection", "server_error", "circuit_open"} <= classes, classes
