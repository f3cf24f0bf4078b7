"""Per-user limits (issue 8, "Per-user limits"): ``USER_RPM`` / ``USER_TPM`` per ``user_id``, end to end.

A user over its limit is refused at once (no queue wait) with ``user_rate_limited``, recorded as a row with no key;
the emulator never sees the request; other users and calls without a ``user_id`` are unaffected; time frees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ErrorClass, ModelConfig, NoUsableKeyError
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import StreamInterruptedError, UserRateLimitedError
from pulsegate.core.provider import Provider
from pulsegate.core.token_estimate import estimate_input_tokens
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import rows, total_requests

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)
HASH_KEY = "a-secret-of-at-least-16-chars"


def user(user_id: str | None) -> CallOptions:
    return CallOptions(user_id=user_id)


def sorted_rows(store: sa.Engine, client: AIClient) -> list[dict[str, object]]:
    client.recorder.flush()
    return rows(store)


async def test_a_user_over_its_request_limit_is_refused_at_once(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(clock=clock, store=store, env={"USER_RPM": "2"})
    for _ in range(2):
        await client.generate_response(SONNET, HELLO, options=user("u-1"))
    with pytest.raises(UserRateLimitedError) as caught:
        await client.generate_response(SONNET, HELLO, options=user("u-1"))
    error = caught.value
    assert str(error) == "user 'u-1' is over the per-user limit (USER_RPM: 2 requests per 60 s); it frees up in 30.0 s"
    assert error.error_class is ErrorClass.USER_RATE_LIMITED
    assert error.retry_after == pytest.approx(30.0)
    assert (error.provider, error.key_label, error.attempts) == ("anthropic", None, 0)
    assert total_requests(emu) == 2  # the refused call never reached the provider

    refused = sorted_rows(store, client)[-1]
    assert refused["error_class"] == "user_rate_limited"
    assert (refused["outcome"], refused["is_final"], refused["user_id"]) == ("error", True, "u-1")
    assert refused["key_label"] is None and refused["queue_wait_ms"] == 0.0
    # nothing is blamed: every key healthy, the breaker closed, the provider's queue empty
    snapshot = client.snapshot()
    anthropic = snapshot["providers"]["anthropic"]
    assert anthropic["breaker"]["state"] == "closed" and anthropic["queue"]["depth"] == 0
    assert all(k["status"] == "healthy" and k["score"] == 100.0 for k in client.pools[Provider.ANTHROPIC].snapshot())
    assert snapshot["users"] == {"rpm": 2.0, "tpm": None, "checked": 3, "refused": 1}

    await client.generate_response(SONNET, HELLO, options=user("u-2"))  # another user is unaffected
    for _ in range(3):
        await client.generate_response(SONNET, HELLO)  # no user_id: not limited per user
    assert total_requests(emu) == 6

    clock.advance(29.9)
    with pytest.raises(UserRateLimitedError, match=r"it frees up in 0\.1 s$"):
        await client.generate_response(SONNET, HELLO, options=user("u-1"))
    clock.advance(0.1)
    response = await client.generate_response(SONNET, HELLO, options=user("u-1"))  # the period freed it
    assert response.attempts == 1
    assert total_requests(emu) == 7


async def test_hashed_user_ids_appear_nowhere(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock
) -> None:
    client = make_client(clock=clock, env={"USER_RPM": "1", "HASH_USER_IDS": HASH_KEY})
    await client.generate_response(SONNET, HELLO, options=user("alice@example.com"))
    with pytest.raises(UserRateLimitedError) as caught:
        await client.generate_response(SONNET, HELLO, options=user("alice@example.com"))
    assert (
        str(caught.value)
        == "this user is over the per-user limit (USER_RPM: 1 request per 60 s); it frees up in 60.0 s"
    )
    assert "alice" not in json.dumps(client.snapshot())
    assert client.snapshot()["users"]["refused"] == 1
    keys = list(client.limiter._tats)  # type: ignore[attr-defined]
    user_keys = [k for k in keys if k.startswith("user:")]
    assert len(user_keys) == 1 and "alice" not in user_keys[0]


async def test_the_token_limit_counts_max_tokens_and_settles_to_usage(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(clock=clock, store=store, env={"USER_TPM": "1000"})
    first = await client.generate_response(SONNET, HELLO, options=user("u-1"))
    used = first.usage.input_tokens + first.usage.output_tokens + first.usage.cache_write_tokens
    estimate = estimate_input_tokens(None, HELLO, None)
    room = 1000 - used - estimate  # the largest max_tokens that still fits after settling to actual usage
    too_big = ModelConfig(model="claude-sonnet-4-6", max_tokens=room + 1)
    with pytest.raises(UserRateLimitedError) as caught:
        await client.generate_response(too_big, HELLO, options=user("u-1"))
    assert str(caught.value) == (
        "user 'u-1' is over the per-user limit (USER_TPM: 1000 tokens per 60 s; "
        f"this call reserves {room + 1 + estimate} tokens); it frees up in 0.1 s"
    )
    assert caught.value.retry_after == pytest.approx(0.06)  # one token's worth of refill
    assert total_requests(emu) == 1
    just_fits = ModelConfig(model="claude-sonnet-4-6", max_tokens=room)
    await client.generate_response(just_fits, HELLO, options=user("u-1"))
    assert total_requests(emu) == 2
    assert [r["error_class"] for r in sorted_rows(store, client)] == [None, "user_rate_limited", None]


async def test_streams_are_limited_and_hold_their_reservation_until_they_end(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(clock=clock, store=store, env={"USER_TPM": "1000", "USER_RPM": "2"})
    big = ModelConfig(model="claude-sonnet-4-6", max_tokens=980)
    async with client.stream_response(big, HELLO, options=user("u-1")) as stream:
        with pytest.raises(UserRateLimitedError, match=r"USER_TPM: 1000 tokens per 60 s"):
            await client.generate_response(SONNET, HELLO, options=user("u-1"))  # the open stream holds 980+
        text = "".join([delta async for delta in stream])
    assert text and stream.response is not None
    await client.generate_response(SONNET, HELLO, options=user("u-1"))  # settled to usage when the stream ended
    with pytest.raises(UserRateLimitedError, match=r"USER_RPM: 2 requests per 60 s"):
        async with client.stream_response(SONNET, HELLO, options=user("u-1")):
            pass
    assert total_requests(emu) == 2
    errors = [r["error_class"] for r in sorted_rows(store, client)]
    assert sorted(errors, key=str) == [None, None, "user_rate_limited", "user_rate_limited"]
    streamed_refusal = [r for r in rows(store) if r["streamed"] and r["error_class"] == "user_rate_limited"]
    assert len(streamed_refusal) == 1


async def test_a_broken_stream_charges_its_user_what_it_spent(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    """A stream that breaks mid-way was billed: its user is charged the row's estimated tokens, not nothing."""
    emu.add_fault({"kind": "truncate_stream", "provider": "anthropic", "after_events": 3 + 4})
    client = make_client(clock=clock, store=store, env={"USER_TPM": "1000"})
    big = ModelConfig(model="claude-sonnet-4-6", max_tokens=600)
    with pytest.raises(StreamInterruptedError):
        async with client.stream_response(big, HELLO, options=user("u-1")) as stream:
            async for _ in stream:
                pass
    (broken,) = sorted_rows(store, client)
    assert (broken["error_class"], broken["usage_estimated"]) == ("stream_interrupted", True)
    spent = broken["input_tokens"] + broken["output_tokens"] + broken["cache_write_tokens"]
    assert spent > broken["output_tokens"] > 0  # the prompt and the partial text, not zero
    estimate = estimate_input_tokens(None, HELLO, None)
    room = 1000 - spent - estimate  # what is left once the broken stream is settled to its spend
    with pytest.raises(UserRateLimitedError, match=f"this call reserves {room + 1 + estimate} tokens"):
        await client.generate_response(
            ModelConfig(model="claude-sonnet-4-6", max_tokens=room + 1), HELLO, options=user("u-1")
        )
    await client.generate_response(ModelConfig(model="claude-sonnet-4-6", max_tokens=room), HELLO, options=user("u-1"))
    assert total_requests(emu) == 2


async def test_a_call_never_sent_gives_the_request_back(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock
) -> None:
    client = make_client(anthropic=0, openai=1, clock=clock, env={"USER_RPM": "1"})
    for _ in range(3):  # no Anthropic key: never sent, so the user's one request is refunded each time
        with pytest.raises(NoUsableKeyError):
            await client.generate_response(SONNET, HELLO, options=user("u-1"))
    gpt = ModelConfig(provider="openai", model="gpt-4.1", max_tokens=32)
    await client.generate_response(gpt, HELLO, options=user("u-1"))
    with pytest.raises(UserRateLimitedError):
        await client.generate_response(gpt, HELLO, options=user("u-1"))
    assert total_requests(emu) == 1


def test_bad_user_limits_are_reported_clearly(emu: EmulatorServer) -> None:
    from pulsegate.core.errors import ConfigError
    from tests.client.conftest import settings_for

    with pytest.raises(ConfigError) as caught:
        settings_for(emu, USER_RPM="lots", USER_TPM="0")
    message = str(caught.value)
    assert "USER_RPM='lots': expected a positive integer (requests per minute for each user_id)" in message
    assert "USER_TPM='0': expected a positive integer (tokens per minute for each user_id)" in message


async def test_skip_rate_limit_calls_count_but_are_never_refused(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock
) -> None:
    client = make_client(clock=clock, env={"USER_RPM": "1"})
    for _ in range(2):
        await client.generate_response(SONNET, HELLO, options=CallOptions(user_id="u-1", skip_rate_limit=True))
    with pytest.raises(UserRateLimitedError, match=r"it frees up in 120\.0 s$"):  # two in a bucket of one: in debt
        await client.generate_response(SONNET, HELLO, options=user("u-1"))
    assert total_requests(emu) == 2


# --- per-feature limits (FEATURE_RPM / FEATURE_TPM) --------------------------------------------------------------


def feature(tag: str | None, user_id: str | None = None) -> CallOptions:
    return CallOptions(feature=tag, user_id=user_id)


async def test_a_feature_over_its_limit_is_refused_at_once_and_others_are_not(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(clock=clock, store=store, env={"FEATURE_RPM": "2", "USER_RPM": "10"})
    for _ in range(2):
        await client.generate_response(SONNET, HELLO, options=feature("summarise", "u-1"))
    with pytest.raises(UserRateLimitedError) as caught:
        await client.generate_response(SONNET, HELLO, options=feature("summarise", "u-1"))
    error = caught.value
    assert str(error) == (
        "feature 'summarise' is over the per-feature limit (FEATURE_RPM: 2 requests per 60 s); it frees up in 30.0 s"
    )
    assert error.error_class is ErrorClass.USER_RATE_LIMITED and error.retry_after == pytest.approx(30.0)
    assert total_requests(emu) == 2
    refused = sorted_rows(store, client)[-1]
    assert (refused["error_class"], refused["feature"], refused["key_label"]) == (
        "user_rate_limited",
        "summarise",
        None,
    )

    await client.generate_response(SONNET, HELLO, options=feature("chat", "u-1"))  # another feature is unaffected
    await client.generate_response(SONNET, HELLO, options=feature(None, "u-1"))  # no feature: not limited per feature
    snapshot = client.snapshot()
    assert snapshot["features"] == {"rpm": 2.0, "tpm": None, "checked": 4, "refused": 1}
    # the refused call was charged to nobody: the user's own bucket holds the 4 calls that went through
    assert snapshot["users"] == {"rpm": 10.0, "tpm": None, "checked": 5, "refused": 0}
    user_rpm = client.limiter.state_nowait("user:u-1:rpm", client.instance.runner.user_limits.rpm)  # type: ignore[attr-defined]
    assert user_rpm.remaining == pytest.approx(6.0)
    clock.advance(30.0)
    await client.generate_response(SONNET, HELLO, options=feature("summarise"))
    assert total_requests(emu) == 5


async def test_the_user_limit_names_the_user_when_it_binds_first(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock
) -> None:
    client = make_client(clock=clock, env={"FEATURE_TPM": "100000", "USER_RPM": "1"})
    await client.generate_response(SONNET, HELLO, options=feature("chat", "u-1"))
    with pytest.raises(UserRateLimitedError, match=r"^user 'u-1' is over the per-user limit \(USER_RPM: 1 request"):
        await client.generate_response(SONNET, HELLO, options=feature("chat", "u-1"))
    assert client.snapshot()["features"]["refused"] == 0


def test_bad_feature_limits_name_the_variable(emu: EmulatorServer) -> None:
    from pulsegate.core.errors import ConfigError
    from tests.client.conftest import settings_for

    with pytest.raises(ConfigError) as caught:
        settings_for(emu, FEATURE_RPM="0", FEATURE_TPM="x")
    assert "FEATURE_RPM='0': expected a positive integer (requests per minute for each feature tag)" in str(
        caught.value
    )
    assert "FEATURE_TPM='x': expected a positive integer (tokens per minute for each feature tag)" in str(caught.value)
