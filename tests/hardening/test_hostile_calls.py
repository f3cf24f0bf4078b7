"""Hostile message payloads, model configs and options given to ``AIClient.generate_response``.

Each call either succeeds, is refused before anything is sent (``RequestValidationError`` naming the field: nothing
reaches the emulator), or is refused by the provider as the request's own fault (``bad_request`` / ``not_found`` /
``too_large``) — never another exception, never a penalised key, and the recorder stores every attempt row (a NUL
in a user id once cost a whole batch its rows on PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsegate import AIClient, RequestValidationError
from pulsegate.core.errors import ErrorClass, ProviderError
from pulsegate.core.provider import Provider
from tests.client.conftest import emu, emulator_server, make_client, rows, total_requests  # noqa: F401

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
REQUEST_SCOPED = {ErrorClass.BAD_REQUEST, ErrorClass.NOT_FOUND, ErrorClass.TOO_LARGE}
NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "\ud800", "\u202e", "x" * 300, "'; DROP TABLE api_usage_metrics; --", '" OR 1=1'],
    ),
)
ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
CONFIGS = st.one_of(
    ANY,
    st.fixed_dictionaries(
        {"model": st.sampled_from(["claude-sonnet-4-6"]) | NASTY_TEXT | ANY, "max_tokens": st.just(8) | ANY},
        optional={
            "provider": st.sampled_from(["anthropic", "openai", "gemini", "ANTHROPIC"]) | ANY,
            "temperature": ANY,
            "stop_sequences": ANY | st.lists(NASTY_TEXT, max_size=3),
            "tools": ANY | st.lists(st.dictionaries(st.sampled_from(["name", "x"]), ANY, max_size=2), max_size=2),
            "tool_choice": ANY | st.fixed_dictionaries({"type": ANY}),
            "maxTokens": ANY,
            "bogus": ANY,
        },
    ),
)
BLOCK = st.one_of(
    ANY, st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "video"]) | ANY, "text": NASTY_TEXT | ANY})
)
MESSAGE = st.one_of(
    ANY,
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]) | ANY, "content": NASTY_TEXT | st.lists(BLOCK) | ANY}
    ),
)
MESSAGES = st.one_of(ANY, st.lists(MESSAGE, max_size=3))
OPTIONS = st.one_of(
    st.none(),
    ANY,
    st.fixed_dictionaries(
        {},
        optional={
            "priority": ANY,
            "timeout_s": ANY,
            "queue_timeout_s": ANY,
            "user_id": NASTY_TEXT | ANY,
            "feature": NASTY_TEXT | ANY,
            "fallback_to_openai": ANY,
            "skip_rate_limit": ANY,
            "fallbackToOpenAI": ANY,
            "nope": ANY,
        },
    ),
)
SYSTEM = st.one_of(st.none(), NASTY_TEXT, ANY, st.lists(BLOCK, max_size=2))
FIELD = re.compile(r"^invalid request: (config|messages|system_prompt|options)[\w.\[\]]*: ")


def _keys_untouched(client: AIClient) -> None:
    for provider in Provider:
        for key in client.pools[provider].snapshot():
            assert (key["status"], key["score"], key["disabled_reason"]) == ("healthy", 100.0, None), key
            assert key["cooldown_remaining_s"] == 0.0 and key["consecutive_failures"] == 0, key


def _one_client(factory: Callable[..., AIClient], **kwargs: int) -> AIClient:
    """One client for all of a test's examples, kept on this test's factory (which closes it after the test)."""
    client = getattr(factory, "hardening_client", None)
    if client is None:
        client = factory(**kwargs)
        factory.hardening_client = client  # type: ignore[attr-defined]
    return client


async def _call(client: AIClient, emulator, config, messages, system, options) -> None:
    before = total_requests(emulator)
    try:
        await client.generate_response(config, messages, system, options)
    except RequestValidationError as exc:
        assert FIELD.match(str(exc)), str(exc)
        assert exc.error_class is ErrorClass.VALIDATION
        assert total_requests(emulator) == before, "a refused request reached the provider"
    except ProviderError as exc:
        assert exc.error_class in REQUEST_SCOPED, (exc.error_class, str(exc))
    _keys_untouched(client)


@FAST
@given(config=CONFIGS, messages=MESSAGES, system=SYSTEM, options=OPTIONS)
async def test_a_hostile_call_is_refused_naming_the_field_or_answered(
    make_client,  # noqa: F811
    emu,  # noqa: F811
    config: object,
    messages: object,
    system: object,
    options: object,
) -> None:
    client = _one_client(make_client, anthropic=2, openai=1)
    await _call(client, emu, config, messages, system, options)


@FAST
@given(
    messages=st.lists(
        st.fixed_dictionaries({"role": st.just("user"), "content": st.text(min_size=1, max_size=30)}),
        min_size=1,
        max_size=2,
    ),
    options=st.fixed_dictionaries({}, optional={"user_id": NASTY_TEXT, "feature": NASTY_TEXT}),
    model=st.sampled_from(["claude-sonnet-4-6", "claude-\x00sonnet", "claude-\ud800", "'; DROP TABLE x; --"]),
)
async def test_hostile_text_that_passes_validation_is_sent_and_stored(
    make_client,  # noqa: F811
    emu,  # noqa: F811
    messages: list[dict[str, str]],
    options: dict[str, str],
    model: str,
) -> None:
    client = _one_client(make_client, anthropic=1, openai=0)
    await _call(client, emu, {"model": model, "max_tokens": 8}, messages, None, options)


@pytest.mark.parametrize(
    ("options", "model", "field"),
    [
        ({"user_id": "bad\x00user"}, "claude-sonnet-4-6", "options.user_id"),
        ({"feature": "f\x00"}, "claude-sonnet-4-6", "options.feature"),
        ({"user_id": "\ud800"}, "claude-sonnet-4-6", "options.user_id"),
        ({}, "claude-\x00sonnet", "config.model"),
        ({}, "claude-\x1bsonnet", "config.model"),
    ],
)
async def test_a_nul_or_surrogate_in_a_stored_name_is_refused_and_every_row_is_stored(
    make_client,  # noqa: F811
    emu,  # noqa: F811
    store: sa.Engine,
    options: dict[str, str],
    model: str,
    field: str,
) -> None:
    client: AIClient = make_client(anthropic=1, openai=0, store=store)
    hello = [{"role": "user", "content": "hi"}]
    await client.generate_response({"model": "claude-sonnet-4-6", "max_tokens": 8}, hello, options={"user_id": "u1"})
    with pytest.raises(RequestValidationError, match=rf"^invalid request: {re.escape(field)}: .*control characters"):
        await client.generate_response({"model": model, "max_tokens": 8}, hello, options=options)
    await client.generate_response({"model": "claude-sonnet-4-6", "max_tokens": 8}, hello, options={"user_id": "u2"})
    assert total_requests(emu) == 2
    assert client.recorder.flush()
    stored = rows(store)
    assert [(r["user_id"], r["error_class"]) for r in stored] == [("u1", None), (None, "validation"), ("u2", None)]
    stats = client.recorder.stats()
    assert (stats["write_failures"], stats["rejected"], stats["lost"]) == (0, 0, 0)
    _keys_untouched(client)


@pytest.mark.parametrize(
    ("config", "messages", "field"),
    [
        ({"model": "m", "max_tokens": 8, "provider": []}, [{"role": "user", "content": "hi"}], "config.provider"),
        ({"model": "m", "max_tokens": 8}, [{"role": [], "content": "hi"}], "messages[0].role"),
        ({"model": "m", "max_tokens": 8}, [{"role": "user", "content": [{"type": {}}]}], "messages[0].content[0].type"),
    ],
)
async def test_an_unhashable_value_where_a_name_goes_is_a_validation_error(
    make_client,  # noqa: F811
    emu,  # noqa: F811
    config: object,
    messages: object,
    field: str,
) -> None:
    client: AIClient = make_client(anthropic=1, openai=0)
    with pytest.raises(RequestValidationError, match=rf"^invalid request: {re.escape(field)}: expected"):
        await client.generate_response(config, messages)  # type: ignore[arg-type]
    assert total_requests(emu) == 0
    _keys_untouched(client)
