"""Fault injection through the real SDKs: resets, stalls, truncated/stalled streams, malformed bodies, latency."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import anthropic
import httpx2
import openai
import pytest
from emulator_testkit import ANTHROPIC_KEY, CLAUDE, GPT, make_anthropic, make_openai, sse_events, user

from pulsegate.core.errors import ErrorClass
from pulsegate.core.provider import Provider
from pulsegate.core.providers.classify import classify_exception
from pulsegate.emulator import EmulatorServer

NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: What each SDK yields of a stream that stalls before its fourth event: Anthropic's message_start and
#: content_block_start (the ping is not yielded), OpenAI's role chunk and two text chunks.
STALLED_AFTER = {"anthropic": ["message_start", "content_block_start"], "openai": ["", "This", " is"]}


def test_connection_reset_raises_api_connection_error(server: EmulatorServer) -> None:
    server.add_fault({"kind": "reset", "count": 2})
    with make_anthropic(server) as a, make_openai(server) as o:
        with pytest.raises(anthropic.APIConnectionError) as a_info:
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(openai.APIConnectionError) as o_info:
            o.chat.completions.create(model=GPT, messages=user("hi"))
        assert type(a_info.value) is anthropic.APIConnectionError
        assert type(o_info.value) is openai.APIConnectionError
        a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))  # the pool recovers
    stats = server.stats()
    assert stats["faults"] == {"reset": 2}
    assert stats["routes"]["anthropic.messages"]["0"] and stats["routes"]["openai.chat_completions"]["0"]


def test_stall_raises_api_timeout_error(server: EmulatorServer) -> None:
    server.add_fault({"kind": "stall", "seconds": 5.0, "count": 2})  # the server drops it when the client leaves
    with make_anthropic(server, timeout=0.3) as a, make_openai(server, timeout=0.3) as o:
        started = time.monotonic()
        with pytest.raises(anthropic.APITimeoutError):
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(openai.APITimeoutError):
            o.chat.completions.create(model=GPT, messages=user("hi"))
        assert time.monotonic() - started < 4.0  # the client gave up; it did not wait for the stall
        a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))


def test_stall_then_answer_for_a_patient_client(server: EmulatorServer) -> None:
    server.add_fault({"kind": "stall", "seconds": 0.3, "route": "models"})
    with make_openai(server) as o:
        started = time.monotonic()
        assert o.models.list().data
        assert time.monotonic() - started >= 0.3


def test_truncated_stream_ends_without_terminal_events(server: EmulatorServer) -> None:
    server.add_fault({"kind": "truncate_stream", "after_events": 4})
    with make_anthropic(server) as a, make_openai(server) as o:
        with a.messages.stream(model=CLAUDE, max_tokens=64, messages=user("hi")) as stream:
            final = stream.get_final_message()  # no exception: the body ended cleanly
        assert final.stop_reason is None and final.content[0].text == "This"
        chunks = list(o.chat.completions.create(model=GPT, messages=user("hi"), stream=True))
        assert len(chunks) == 4 and all(c.choices[0].finish_reason is None for c in chunks)
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": user("hi")}
    with httpx2.Client() as http:
        resp = http.post(server.url + "/v1/messages", json=body, headers={"x-api-key": ANTHROPIC_KEY})
    assert resp.headers["connection"] == "close"
    names = [n for n, _ in sse_events(resp.text)]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta"]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_stalled_stream_times_out_while_iterating(server: EmulatorServer, provider: str) -> None:
    """A stream that stalls past the read timeout raises while it is read. Which exception depends on the SDK's
    version — anthropic 2.17 wraps httpx2's ``ReadTimeout`` in ``APITimeoutError``, anthropic 2.14 to 2.16 and
    openai 3.x let it through — so what is checked is what Pulsegate makes of it: the ``timeout`` class."""
    server.add_fault({"kind": "stall_stream", "provider": provider, "after_events": 3, "seconds": 5.0, "count": 1})
    got: list[str] = []
    started = time.monotonic()
    try:
        if provider == "anthropic":
            with make_anthropic(server, timeout=0.5) as a:
                for event in a.messages.create(model=CLAUDE, max_tokens=64, messages=user("hi"), stream=True):
                    got.append(event.type)
        else:
            with make_openai(server, timeout=0.5) as o:
                for chunk in o.chat.completions.create(model=GPT, messages=user("hi"), stream=True):
                    got.append(chunk.choices[0].delta.content or "")
    except Exception as exc:
        raised: BaseException = exc
    else:
        pytest.fail("the stalled stream ended without an error")
    assert time.monotonic() - started < 4.0  # the client gave up; it did not wait for the stall
    assert got == STALLED_AFTER[provider]
    chain = [raised, raised.__cause__]
    assert any(isinstance(e, httpx2.ReadTimeout) for e in chain), chain  # either shape: the read timed out
    error = classify_exception(raised, Provider(provider), NOW, "Primary")
    assert error.error_class is ErrorClass.TIMEOUT
    assert str(error) == f"{provider} key 'Primary': timeout: the provider did not answer in time"


def test_stalled_stream_resumes_for_a_patient_client(server: EmulatorServer) -> None:
    server.add_fault({"kind": "stall_stream", "provider": "openai", "after_events": 2, "seconds": 0.3})
    with make_openai(server) as o:
        stamps = []
        for _ in o.chat.completions.create(model=GPT, messages=user("hi"), stream=True):
            stamps.append(time.monotonic())
    assert stamps[2] - stamps[1] >= 0.25
    assert len(stamps) > 5


def test_malformed_json_body(server: EmulatorServer) -> None:
    server.add_fault({"kind": "malformed_json", "count": 2})
    with make_anthropic(server) as a, make_openai(server) as o:
        # A 200 with a broken JSON body: both SDKs let json's own error through.
        with pytest.raises(json.JSONDecodeError):
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(json.JSONDecodeError):
            o.chat.completions.create(model=GPT, messages=user("hi"))


def test_malformed_json_inside_a_stream(server: EmulatorServer) -> None:
    server.add_fault({"kind": "malformed_json", "stream": True, "after_events": 1, "count": 1})
    with make_openai(server) as o, pytest.raises(json.JSONDecodeError):
        list(o.chat.completions.create(model=GPT, messages=user("hi"), stream=True))


def test_count_based_injection_is_exact(server: EmulatorServer) -> None:
    server.add_fault({"kind": "error", "status": 500, "count": 2, "provider": "anthropic"})
    outcomes = []
    with make_anthropic(server) as a, make_openai(server) as o:
        o.chat.completions.create(model=GPT, messages=user("hi"))  # other provider: not matched, not counted
        for _ in range(4):
            try:
                a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
                outcomes.append(200)
            except anthropic.InternalServerError as exc:
                outcomes.append(exc.status_code)
    assert outcomes == [500, 500, 200, 200]
    assert server.stats()["faults"] == {"error": 2}
    server.reset()  # restores the counts
    with make_anthropic(server) as a, pytest.raises(anthropic.InternalServerError):
        a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))


def test_rate_based_injection_is_seeded(server: EmulatorServer) -> None:
    def run() -> list[int]:
        codes = []
        with make_openai(server) as o:
            for _ in range(30):
                try:
                    o.chat.completions.create(model=GPT, messages=user("hi"))
                    codes.append(200)
                except openai.APIStatusError as exc:
                    codes.append(exc.status_code)
        return codes

    server.set_scenario({"seed": 7, "faults": [{"kind": "unavailable", "rate": 0.5}]})
    first = run()
    server.reset()
    assert run() == first
    assert 5 <= first.count(503) <= 25 and set(first) == {200, 503}


@pytest.mark.parametrize(
    ("rule", "hit"),
    [
        ({"key": "key-a"}, [True, False, False, False]),
        ({"route": "count_tokens"}, [False, False, True, False]),
        ({"route": "anthropic.models"}, [False, False, False, True]),
        ({"model": "claude-haiku-4-5"}, [False, True, False, False]),
        ({"stream": False, "route": "messages"}, [True, True, False, False]),
    ],
)
def test_fault_filters(server: EmulatorServer, rule: dict[str, object], hit: list[bool]) -> None:
    server.add_fault({"kind": "server_error", **rule})
    with make_anthropic(server, "key-a") as a, make_anthropic(server, "key-b") as b:
        calls = [
            lambda: a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi")),
            lambda: b.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=user("hi")),
            lambda: b.messages.count_tokens(model=CLAUDE, messages=user("hi")),
            lambda: b.models.list(),
        ]
        seen = []
        for call in calls:
            try:
                call()
                seen.append(False)
            except anthropic.InternalServerError:
                seen.append(True)
    assert seen == hit


def test_error_fault_classes(server: EmulatorServer) -> None:
    with make_anthropic(server) as a, make_openai(server) as o:
        server.add_fault({"kind": "unavailable", "count": 1})
        with pytest.raises(anthropic.ServiceUnavailableError):
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        server.add_fault({"kind": "error", "status": 529, "count": 1})
        with pytest.raises(openai.InternalServerError) as info:
            o.chat.completions.create(model=GPT, messages=user("hi"))
        assert info.value.status_code == 529
        server.add_fault({"kind": "rate_limit", "retry_after": 7, "count": 2})
        with pytest.raises(anthropic.RateLimitError) as a429:
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(openai.RateLimitError) as o429:
            o.chat.completions.create(model=GPT, messages=user("hi"))
        assert a429.value.response.headers["retry-after"] == o429.value.response.headers["retry-after"] == "7"
        assert (o429.value.type, o429.value.code) == ("requests", "rate_limit_exceeded")
        server.add_fault({"kind": "error", "status": 409, "message": "busy", "count": 1})
        with pytest.raises(anthropic.ConflictError) as conflict:
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        assert conflict.value.body["error"]["message"] == "busy"


def test_fixed_latency_is_applied(server: EmulatorServer) -> None:
    server.set_scenario({"latency": {"kind": "fixed", "ms": 150}})
    with make_openai(server) as o:
        o.models.list()  # warm the connection
        started = time.monotonic()
        o.chat.completions.create(model=GPT, messages=user("hi"))
        elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0


def test_time_to_first_token_and_per_token_delay(server: EmulatorServer) -> None:
    server.set_scenario({"latency": {"ttft_ms": 200, "per_token_ms": 20}})
    with make_anthropic(server) as a:
        stamps: list[tuple[str, float]] = []
        for event in a.messages.create(model=CLAUDE, max_tokens=64, messages=user("hi"), stream=True):
            stamps.append((event.type, time.monotonic()))
    start = stamps[0][1]
    deltas = [t for name, t in stamps if name == "content_block_delta"]
    assert deltas[0] - start >= 0.18
    assert deltas[-1] - deltas[0] >= 0.02 * (len(deltas) - 1) * 0.9
    assert deltas[-1] - start < 3.0
