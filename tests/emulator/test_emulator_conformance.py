"""Conformance: every case of wire-examples/manifest.json is produced by the emulator and checked through the real SDK.

Each manifest entry has a driver that configures the emulator (scenario, key behaviour or fault), makes the call
with `anthropic` / `openai` (max_retries=0) and asserts the outcome the manifest records: exception class, status,
error type/code/details, headers (every header name of the entry must be present), body shape, stream events.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from emulator_testkit import (
    ANTHROPIC_KEY,
    CLAUDE,
    FIXTURES,
    GPT,
    OPENAI_KEY,
    fixture_json,
    make_anthropic,
    make_openai,
    sse_events,
    user,
)

from pulsegate.emulator import EmulatorServer

MANIFEST: list[dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())
Driver = Callable[[EmulatorServer, dict[str, Any]], None]
DRIVERS: dict[str, Driver] = {}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string", "examples": ["Paris, France"]}},
    "required": ["location"],
}
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather for a place", "input_schema": WEATHER_SCHEMA}]
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA}}
]


def driver(file: str) -> Callable[[Driver], Driver]:
    def register(fn: Driver) -> Driver:
        DRIVERS[file] = fn
        return fn

    return register


def expected_class(entry: dict[str, Any]) -> type | None:
    """The class named first in the manifest's `expect` (e.g. `anthropic.RateLimitError`), if it names one."""
    name = entry["expect"].split()[0]
    if not name.startswith(("anthropic.", "openai.")):
        return None
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def same_shape(actual: Any, expected: Any, path: str = "$", superset: bool = False) -> None:
    """Same keys at every level (or more keys with `superset`), same list lengths, same JSON leaf types."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        if superset:
            assert set(actual) >= set(expected), f"{path}: {sorted(actual)} lacks some of {sorted(expected)}"
        else:
            assert set(actual) == set(expected), f"{path}: {sorted(actual)} != {sorted(expected)}"
        for k in expected:
            same_shape(actual[k], expected[k], f"{path}.{k}", superset)
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            same_shape(a, e, f"{path}[{i}]", superset)
    else:
        assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"


def assert_headers(headers: httpx2.Headers, entry: dict[str, Any]) -> None:
    for name in entry["headers"]:
        assert name in headers, f"missing header {name}"
    if "retry-after" in entry["headers"]:
        assert re.fullmatch(r"[1-9]\d*", headers["retry-after"])
    if "x-should-retry" in entry["headers"]:
        assert headers["x-should-retry"] == entry["headers"]["x-should-retry"]
    if entry["file"].startswith("anthropic/"):
        assert re.fullmatch(r"req_\w+", headers["request-id"])
    else:
        assert re.fullmatch(r"req_\w+", headers["x-request-id"])


def check_anthropic_error(exc: anthropic.APIStatusError, entry: dict[str, Any]) -> None:
    assert type(exc) is expected_class(entry)
    assert exc.status_code == entry["status"]
    want = fixture_json(entry["file"])
    assert exc.body["type"] == "error"
    assert exc.type == want["error"]["type"]
    assert exc.body["error"]["type"] == want["error"]["type"]
    assert exc.body["error"].get("details") == want["error"].get("details")
    same_shape(exc.body, want)
    assert exc.request_id == exc.response.headers["request-id"] == exc.body["request_id"]
    assert_headers(exc.response.headers, entry)


def check_openai_error(exc: openai.APIStatusError, entry: dict[str, Any]) -> None:
    assert type(exc) is expected_class(entry)
    assert exc.status_code == entry["status"]
    want = fixture_json(entry["file"])["error"]
    assert (exc.type, exc.code, exc.param) == (want["type"], want["code"], want["param"])
    assert isinstance(exc.body, dict)
    same_shape(exc.body, want)
    assert exc.request_id == exc.response.headers["x-request-id"]
    assert_headers(exc.response.headers, entry)


def anthropic_error(
    srv: EmulatorServer, entry: dict[str, Any], call: Callable[[anthropic.Anthropic], Any], key: str = ANTHROPIC_KEY
) -> None:
    with make_anthropic(srv, key) as client, pytest.raises(anthropic.APIStatusError) as info:
        call(client)
    check_anthropic_error(info.value, entry)


def openai_error(
    srv: EmulatorServer, entry: dict[str, Any], call: Callable[[openai.OpenAI], Any], key: str = OPENAI_KEY
) -> None:
    with make_openai(srv, key) as client, pytest.raises(openai.APIStatusError) as info:
        call(client)
    check_openai_error(info.value, entry)


def claude_call(client: anthropic.Anthropic, **kw: Any) -> Any:
    args: dict[str, Any] = {"model": CLAUDE, "max_tokens": 64, "messages": user("What is the weather in Paris?")}
    args.update(kw)
    return client.messages.create(**args)


def gpt_call(client: openai.OpenAI, **kw: Any) -> Any:
    args: dict[str, Any] = {"model": GPT, "messages": user("What is the weather in Paris?")}
    args.update(kw)
    return client.chat.completions.create(**args)


def collapse(names: list[str | None]) -> list[str | None]:
    """Drop pings and merge runs of the same event (lengths of delta runs legitimately differ)."""
    out: list[str | None] = []
    for n in names:
        if n != "ping" and (not out or out[-1] != n):
            out.append(n)
    return out


# -- Anthropic successes -----------------------------------------------------------------------------------
@driver("anthropic/messages_success.json")
def _messages_success(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    with make_anthropic(srv) as client:
        raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=256, messages=user("Weather in Paris?"))
        msg = raw.parse()
    assert type(msg) is expected_class(entry)
    same_shape(raw.http_response.json(), fixture_json(entry["file"]))
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0
    assert msg._request_id == raw.headers["request-id"]
    assert_headers(raw.headers, entry)


@driver("anthropic/messages_tool_use.json")
def _messages_tool_use(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    with make_anthropic(srv) as client:
        raw = client.messages.with_raw_response.create(
            model=CLAUDE,
            max_tokens=256,
            messages=user("What is the weather in Paris?"),
            tools=ANTHROPIC_TOOLS,
            tool_choice={"type": "any"},
        )
        msg = raw.parse()
    assert type(msg) is expected_class(entry)
    same_shape(raw.http_response.json(), fixture_json(entry["file"]))
    assert [b.type for b in msg.content] == ["text", "tool_use"]
    assert msg.content[1].name == "get_weather" and msg.content[1].input == {"location": "Paris, France"}
    assert msg.stop_reason == "tool_use"
    assert_headers(raw.headers, entry)


@driver("anthropic/messages_probe_max_tokens_1.json")
def _probe(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    with make_anthropic(srv) as client:
        raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=1, messages=user("hi"))
        msg = raw.parse()
    assert type(msg) is expected_class(entry)
    same_shape(raw.http_response.json(), fixture_json(entry["file"]))
    assert msg.stop_reason == "max_tokens"
    assert msg.usage.output_tokens == 1
    assert len(msg.content) == 1 and msg.content[0].text
    assert_headers(raw.headers, entry)


@driver("anthropic/count_tokens_response.json")
def _count_tokens(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    with make_anthropic(srv) as client:
        raw = client.messages.with_raw_response.count_tokens(model=CLAUDE, messages=user("x" * 400))
        counted = raw.parse()
    assert type(counted) is expected_class(entry)
    same_shape(raw.http_response.json(), fixture_json(entry["file"]))
    assert counted.input_tokens == 100
    assert_headers(raw.headers, entry)


@driver("anthropic/models_list.json")
def _anthropic_models(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"models": {"anthropic": fixture_json(entry["file"])["data"]}})
    with make_anthropic(srv) as client:
        raw = client.models.with_raw_response.list()
        page = raw.parse()
    assert type(page).__name__ == "SyncPage[ModelInfo]"
    assert raw.http_response.json() == fixture_json(entry["file"])
    assert [m.id for m in page.data] == ["claude-sonnet-4-6", "claude-haiku-4-5-20251001"]
    assert_headers(raw.headers, entry)


# -- Anthropic streams -------------------------------------------------------------------------------------
@driver("anthropic/stream_text.sse")
def _anthropic_stream_text(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"reply": {"text": "Hello!"}})
    want = sse_events((FIXTURES / entry["file"]).read_text())
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": user("Say hello")}
    headers = {"authorization": f"Bearer {ANTHROPIC_KEY}", "anthropic-version": "2026-10-21"}
    with httpx2.Client() as http:
        resp = http.post(srv.url + "/v1/messages", json=body, headers=headers)
    got = sse_events(resp.text)
    assert [n for n, _ in got] == [n for n, _ in want]  # the exact order, ping included
    for (_, g), (_, w) in zip(got, want, strict=True):
        same_shape(g, w)
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert_headers(resp.headers, entry)
    with make_anthropic(srv) as client:
        events = list(client.messages.create(stream=True, model=CLAUDE, max_tokens=64, messages=user("Say hello")))
        assert len(events) == 7
        assert [e.type for e in events] == [n for n, _ in want if n != "ping"]
        with client.messages.stream(model=CLAUDE, max_tokens=64, messages=user("Say hello")) as stream:
            assert stream.get_final_text() == "Hello!"
            final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 2 and final.usage.input_tokens == 3


@driver("anthropic/stream_tool_use.sse")
def _anthropic_stream_tool(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    want = sse_events((FIXTURES / entry["file"]).read_text())
    with make_anthropic(srv) as client:
        names = [
            e.type
            for e in client.messages.create(
                stream=True,
                model=CLAUDE,
                max_tokens=256,
                messages=user("Weather?"),
                tools=ANTHROPIC_TOOLS,
                tool_choice={"type": "tool", "name": "get_weather"},
            )
        ]
        with client.messages.stream(
            model=CLAUDE,
            max_tokens=256,
            messages=user("Weather?"),
            tools=ANTHROPIC_TOOLS,
            tool_choice={"type": "tool", "name": "get_weather"},
        ) as stream:
            final = stream.get_final_message()
    assert collapse(names) == collapse([n for n, _ in want])
    assert final.content[1].input == {"location": "Paris, France"}
    assert final.stop_reason == "tool_use"


@driver("anthropic/stream_midstream_error.sse")
def _anthropic_stream_error(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    want = sse_events((FIXTURES / entry["file"]).read_text())
    srv.add_fault({"kind": "stream_error", "after_events": 4, "count": 2})
    names: list[str] = []
    with make_anthropic(srv) as client:
        with pytest.raises(anthropic.APIStatusError) as info:
            for event in client.messages.create(stream=True, model=CLAUDE, max_tokens=64, messages=user("Hi")):
                names.append(event.type)
        exc = info.value
        assert type(exc) is expected_class(entry)
        assert not isinstance(exc, anthropic.OverloadedError)
        assert exc.status_code == 200 and exc.type == "overloaded_error"
        assert names == ["message_start", "content_block_start", "content_block_delta"]
        body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": user("Hi")}
        resp = client.messages.with_raw_response.create(**body)
        got = sse_events(resp.http_response.read().decode())
    assert collapse([n for n, _ in got]) == collapse([n for n, _ in want])
    same_shape(got[-1][1], want[-1][1])


# -- Anthropic errors --------------------------------------------------------------------------------------
@driver("anthropic/error_400_invalid_request_error.json")
def _a400(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    body = {"model": CLAUDE, "messages": user("no max_tokens")}
    anthropic_error(srv, entry, lambda c: c.post("/v1/messages", body=body, cast_to=anthropic.types.Message))
    with make_anthropic(srv) as client, pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    assert info.value.body["error"]["message"] == "max_tokens: Field required"


@driver("anthropic/error_401_authentication_error.json")
def _a401(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-revoked": {"behaviour": "invalid"}}})
    anthropic_error(srv, entry, claude_call, key="key-revoked")


@driver("anthropic/error_402_billing_error.json")
def _a402(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-broke": {"behaviour": "billing"}}})
    anthropic_error(srv, entry, claude_call, key="key-broke")


@driver("anthropic/error_403_permission_error.json")
def _a403(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-limited": {"behaviour": "permission"}}})
    anthropic_error(srv, entry, claude_call, key="key-limited")


@driver("anthropic/error_404_not_found_error.json")
def _a404(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"unknown_models": ["claude-does-not-exist"]})
    anthropic_error(srv, entry, lambda c: claude_call(c, model="claude-does-not-exist"))


@driver("anthropic/error_413_request_too_large.json")
def _a413(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"max_body_bytes": 2000})
    anthropic_error(srv, entry, lambda c: claude_call(c, messages=user("x" * 5000)))


@driver("anthropic/error_429_rate_limit_error.json")
def _a429(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {ANTHROPIC_KEY: {"requests": 50, "tokens": 100_000, "input_tokens": 200}}})
    with make_anthropic(srv) as client:
        claude_call(client, messages=user("y" * 600))  # 150 input tokens of the 200 per minute
    anthropic_error(srv, entry, lambda c: claude_call(c, messages=user("y" * 600)))


@driver("anthropic/error_500_api_error.json")
def _a500(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.add_fault({"kind": "server_error", "provider": "anthropic", "count": 1})
    anthropic_error(srv, entry, claude_call)


@driver("anthropic/error_504_timeout_error.json")
def _a504(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.add_fault({"kind": "gateway_timeout", "count": 1})
    anthropic_error(srv, entry, claude_call)


@driver("anthropic/error_529_overloaded_error.json")
def _a529(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.add_fault({"kind": "overloaded", "route": "messages", "count": 1})
    anthropic_error(srv, entry, claude_call)


@driver("anthropic/error_429_enforced_spend_limit_reached.json")
def _a429_spend(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-spent": {"behaviour": "quota"}}})
    anthropic_error(srv, entry, claude_call, key="key-spent")


# -- OpenAI successes --------------------------------------------------------------------------------------
@driver("openai/chat_success.json")
def _chat_success(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    with make_openai(srv) as client:
        raw = client.chat.completions.with_raw_response.create(model=GPT, messages=user("Weather in Paris?"))
        cc = raw.parse()
    assert type(cc) is expected_class(entry)
    same_shape(raw.http_response.json(), fixture_json(entry["file"]))
    assert cc.choices[0].finish_reason == "stop"
    usage = cc.usage
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert cc._request_id == raw.headers["x-request-id"]
    assert_headers(raw.headers, entry)


@driver("openai/chat_tool_calls.json")
def _chat_tools(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    with make_openai(srv) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=GPT, messages=user("What is the weather in Paris?"), tools=OPENAI_TOOLS, tool_choice="required"
        )
        cc = raw.parse()
    assert type(cc) is expected_class(entry)
    same_shape(raw.http_response.json(), fixture_json(entry["file"]))
    call = cc.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"location":"Paris, France"}'
    assert cc.choices[0].finish_reason == "tool_calls" and cc.choices[0].message.content is None
    assert_headers(raw.headers, entry)


@driver("openai/models_list.json")
def _openai_models(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"models": {"openai": fixture_json(entry["file"])["data"]}})
    with make_openai(srv) as client:
        raw = client.models.with_raw_response.list()
        page = raw.parse()
    assert type(page).__name__ == "SyncPage[Model]"
    assert raw.http_response.json() == fixture_json(entry["file"])
    assert [m.id for m in page.data] == ["gpt-4.1", "gpt-4o-mini"]
    assert_headers(raw.headers, entry)


# -- OpenAI streams ----------------------------------------------------------------------------------------
@driver("openai/stream_text_include_usage.sse")
def _openai_stream_usage(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"reply": {"text": "Hello!"}})
    want = sse_events((FIXTURES / entry["file"]).read_text())
    prompt = "Please say hello to me in one word."  # 36 characters -> 9 prompt tokens
    with make_openai(srv) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=GPT, messages=user(prompt), stream=True, stream_options={"include_usage": True}
        )
        got = sse_events(raw.http_response.read().decode())
        chunks = list(
            client.chat.completions.create(
                model=GPT, messages=user(prompt), stream=True, stream_options={"include_usage": True}
            )
        )
    assert [n for n, _ in got] == [None] * len(want)  # data-only events
    assert got[-1][1] == "[DONE]"
    for (_, g), (_, w) in zip(got[:-1], want[:-1], strict=True):
        same_shape(g, w)
    assert len(chunks) == 5
    assert all(type(c).__name__ == "ChatCompletionChunk" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 11
    assert all(c.usage is None for c in chunks[:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == "Hello!"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert_headers(raw.headers, entry)


@driver("openai/stream_tool_calls.sse")
def _openai_stream_tools(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    want = sse_events((FIXTURES / entry["file"]).read_text())
    with make_openai(srv) as client:
        raw = client.chat.completions.with_raw_response.create(
            model=GPT,
            messages=user("Weather?"),
            tools=OPENAI_TOOLS,
            stream=True,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        got = sse_events(raw.http_response.read().decode())
        chunks = list(
            client.chat.completions.create(
                model=GPT,
                messages=user("Weather?"),
                tools=OPENAI_TOOLS,
                stream=True,
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
            )
        )
    same_shape(got[0][1], want[0][1])
    same_shape(got[-2][1], want[-2][1])
    args = "".join(
        call.function.arguments or ""
        for c in chunks
        for call in (c.choices[0].delta.tool_calls or [])
        if call.function is not None
    )
    assert args == '{"location":"Paris, France"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert "usage" not in got[0][1]


@driver("openai/stream_midstream_error.sse")
def _openai_stream_error(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    want = sse_events((FIXTURES / entry["file"]).read_text())
    srv.add_fault({"kind": "stream_error", "provider": "openai", "after_events": 1, "count": 2})
    with make_openai(srv) as client:
        seen = []
        with pytest.raises(openai.APIError) as info:
            for chunk in client.chat.completions.create(model=GPT, messages=user("Hi"), stream=True):
                seen.append(chunk)
        exc = info.value
        assert type(exc) is expected_class(entry)
        assert not hasattr(exc, "status_code")
        assert exc.type == "server_error"
        assert len(seen) == 1
        raw = client.chat.completions.with_raw_response.create(model=GPT, messages=user("Hi"), stream=True)
        got = sse_events(raw.http_response.read().decode())
    assert len(got) == len(want)
    for (_, g), (_, w) in zip(got, want, strict=True):
        same_shape(g, w, superset=True)  # the fixture's first delta omits `refusal`; stream_text's has it
    assert got[-1][1] == want[-1][1]


# -- OpenAI errors -----------------------------------------------------------------------------------------
@driver("openai/error_400_context_length_exceeded.json")
def _o400_context(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"context_window": {"openai": 1000}})
    openai_error(srv, entry, lambda c: gpt_call(c, messages=user("z" * 5000)))


@driver("openai/error_400_unsupported_parameter.json")
def _o400_param(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    openai_error(srv, entry, lambda c: gpt_call(c, model="o3", max_tokens=100))


@driver("openai/error_401_invalid_api_key.json")
def _o401(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-revoked": {"behaviour": "invalid"}}})
    openai_error(srv, entry, gpt_call, key="key-revoked")


@driver("openai/error_403_unsupported_country_region_territory.json")
def _o403(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-elsewhere": {"behaviour": "permission"}}})
    openai_error(srv, entry, gpt_call, key="key-elsewhere")


@driver("openai/error_404_model_not_found.json")
def _o404(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"unknown_models": ["gpt-9"]})
    openai_error(srv, entry, lambda c: gpt_call(c, model="gpt-9"))
    openai_error(srv, entry, lambda c: c.models.retrieve("gpt-9"))


@driver("openai/error_429_rate_limit_exceeded.json")
def _o429(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {OPENAI_KEY: {"requests": 500, "tokens": 1000}}})
    with make_openai(srv) as client:
        gpt_call(client, max_completion_tokens=900)  # reserves 900+, gives back what it did not generate
    openai_error(srv, entry, lambda c: gpt_call(c, max_completion_tokens=990))


@driver("openai/error_429_insufficient_quota.json")
def _o429_quota(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.set_scenario({"keys": {"key-spent": {"behaviour": "quota"}}})
    openai_error(srv, entry, gpt_call, key="key-spent")


@driver("openai/error_500_server_error.json")
def _o500(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.add_fault({"kind": "error", "status": 500, "provider": "openai", "count": 1})
    openai_error(srv, entry, gpt_call)


@driver("openai/error_503_overloaded.json")
def _o503(srv: EmulatorServer, entry: dict[str, Any]) -> None:
    srv.add_fault({"kind": "overloaded", "provider": "openai", "count": 1})
    openai_error(srv, entry, gpt_call)


# -- the parametrised tests --------------------------------------------------------------------------------
def test_every_manifest_entry_has_a_driver() -> None:
    assert {e["file"] for e in MANIFEST} == set(DRIVERS)
    assert len(MANIFEST) == 34


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_manifest_case(server: EmulatorServer, entry: dict[str, Any]) -> None:
    DRIVERS[entry["file"]](server, entry)
