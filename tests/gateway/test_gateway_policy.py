"""The policy behind the gateway, seen from an app's SDK with its default retries: the gateway's own retries and key
rotation, the provider's refusals in the provider's words, one deadline, and what a disconnecting client leaves."""

from __future__ import annotations

import time

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.gateway.test_gateway_sdks import MESSAGES, provider_requests


def test_a_529_is_retried_by_the_gateway_and_the_app_sees_one_answer(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario({"faults": [{"kind": "overloaded", "provider": "anthropic", "count": 1}]})
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token("web"))  # default max_retries=2
    message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES)
    assert message.content[0].text.startswith("This is an emulated reply")
    assert provider_requests(emu, "anthropic.messages") == 2
    rows = gateway.rows(wait_for=2)
    assert [(r["outcome"], r["error_class"], r["http_status"], r["is_final"]) for r in rows] == [
        ("error", "overloaded", 529, False),
        ("success", None, 200, True),
    ]
    assert len({r["call_id"] for r in rows}) == 1


def test_a_request_the_provider_refuses_reaches_the_app_in_the_providers_words_once(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario(
        {"faults": [{"kind": "error", "status": 400, "provider": "openai", "message": "temperature: too hot"}]}
    )
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.token("web"))
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, temperature=9)
    assert "temperature: too hot" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert provider_requests(emu, "openai.chat_completions") == 1
    (row,) = gateway.rows(wait_for=1)
    assert (row["outcome"], row["error_class"], row["http_status"]) == ("error", "bad_request", 400)


def test_the_deadline_bounds_the_call_and_the_app_does_not_retry_it(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario({"faults": [{"kind": "stall", "seconds": 5, "provider": "anthropic"}]})
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token("web"))  # default retries
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as late:
        ant.messages.create(
            model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES, extra_headers={"x-pulsegate-timeout": "1"}
        )
    elapsed = time.monotonic() - started
    assert late.value.status_code == 504 and late.value.body["error"]["type"] == "timeout_error"
    assert 0.9 < elapsed < 2.0
    assert provider_requests(emu, "anthropic.messages") == 1
    (row,) = gateway.rows(wait_for=1)
    assert (row["outcome"], row["error_class"]) == ("error", "timeout")


def test_a_bad_control_header_is_a_400_naming_it(start_gateway) -> None:
    gateway = start_gateway()
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.token("web"), max_retries=0)
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(
            model="gpt-4.1", messages=MESSAGES, extra_headers={"x-pulsegate-priority": "urgent"}
        )
    assert "x-pulsegate-priority: must be a whole number from 0 to 10, got 'urgent'" in bad.value.message


def test_a_client_that_leaves_mid_stream_leaves_a_cancelled_row_with_its_usage(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario({"faults": [{"kind": "stall_stream", "seconds": 3, "after_events": 4, "provider": "anthropic"}]})
    token = gateway.token("web")
    body = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES, "stream": True}
    with (
        httpx.Client(timeout=10) as http,
        http.stream("POST", f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": token}) as response,
    ):
        assert response.status_code == 200
        first = next(response.iter_bytes())
    assert b"message_start" in first
    (row,) = gateway.rows(wait_for=1)
    assert (row["outcome"], row["streamed"], row["is_final"]) == ("cancelled", True, True)
    assert row["input_tokens"] > 0 and row["usage_estimated"]  # message_start's exact input, the rest estimated
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


def test_a_stream_that_breaks_off_is_an_error_row_and_the_app_sees_the_cut(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario({"faults": [{"kind": "truncate_stream", "after_events": 3, "provider": "openai"}]})
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.token("web"), max_retries=0)
    chunks = list(oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=64, stream=True))
    assert not any(c.choices and c.choices[0].finish_reason for c in chunks)  # no finish: the SDK sees a cut stream
    (row,) = gateway.rows(wait_for=1)
    assert row["outcome"] == "error" and row["error_class"] in ("server_error", "stream_interrupted")
    assert row["usage_estimated"]


STORM = {"faults": [{"kind": "overloaded", "provider": "anthropic"}]}


def test_a_529_storm_falls_back_to_openai_and_the_anthropic_sdk_gets_anthropic_form(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario(STORM)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token("web"))  # default retries
    raw = ant.messages.with_raw_response.create(model="claude-sonnet-4-6", max_tokens=32, messages=MESSAGES)
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text.startswith("This is an emulated reply")
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert (raw.headers["x-pulsegate-provider"], raw.headers["x-pulsegate-fell-back"]) == ("openai", "true")
    assert provider_requests(emu, "anthropic.messages") == 2  # one retry of the 529, then the fallback
    assert provider_requests(emu, "openai.chat_completions") == 1
    rows = gateway.rows(wait_for=3)
    assert [(r["provider"], r["model"], r["outcome"], r["fell_back_from"]) for r in rows] == [
        ("anthropic", "claude-sonnet-4-6", "error", None),
        ("anthropic", "claude-sonnet-4-6", "error", None),
        ("openai", "gpt-4.1", "success", "anthropic"),
    ]


def test_a_fallen_back_stream_reaches_the_anthropic_sdk_as_anthropic_events(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario(STORM)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token("web"))
    with ant.messages.stream(model="claude-sonnet-4-6", max_tokens=32, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("This is an emulated reply")
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    rows = gateway.rows(wait_for=3)
    assert [(r["provider"], r["outcome"], r["streamed"]) for r in rows][-1] == ("openai", "success", True)
    assert rows[-1]["output_tokens"] == final.usage.output_tokens


def test_without_fallback_a_storm_ends_in_a_529_the_sdk_does_not_retry(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario(STORM)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token("web"))
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        ant.messages.create(
            model="claude-sonnet-4-6", max_tokens=32, messages=MESSAGES, extra_headers={"x-pulsegate-fallback": "false"}
        )
    assert overloaded.value.response.headers["x-should-retry"] == "false"
    assert provider_requests(emu, "anthropic.messages") == 2  # the gateway's own attempts only
    assert provider_requests(emu, "openai.chat_completions") == 0


def test_a_fallen_back_tool_call_keeps_its_tool_use_block(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario(STORM)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=gateway.token("web"))
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    message = ant.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=[{"role": "user", "content": "weather in Paris? use the tool"}],
        tools=tools,
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert len(tool_uses) == 1 and tool_uses[0].name == "get_weather"
    assert message.stop_reason == "tool_use"


def test_with_hash_user_ids_the_provider_and_the_store_see_only_the_hash(start_gateway, emu) -> None:
    from pulsegate.core.user_ids import hash_user_id

    secret = "gateway-hash-key-0123456789"
    gateway = start_gateway(HASH_USER_IDS=secret)
    token = gateway.token("web")
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=token, max_retries=0)
    oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=8, user="alice@example.com")
    ant.messages.create(
        model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES, metadata={"user_id": "bob@example.com"}
    )
    alice, bob = (hash_user_id(u, secret.encode()) for u in ("alice@example.com", "bob@example.com"))
    assert emu.stats()["end_users"] == dict(sorted({alice: 1, bob: 1}.items()))
    rows = gateway.rows(wait_for=2)
    assert [r["user_id"] for r in rows] == [alice, bob]
