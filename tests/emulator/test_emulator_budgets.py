"""Per-key budgets: 429s with exact retry-after and rate-limit headers, recovery by moving a manual clock."""

from __future__ import annotations

import re

import anthropic
import httpx2
import openai
import pytest
from emulator_testkit import ANTHROPIC_KEY, CLAUDE, GPT, OPENAI_KEY, make_anthropic, make_openai, user

from pulsegate.emulator import EmulatorServer
from pulsegate.emulator.formats import go_duration, rfc3339

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
GO_DURATION = re.compile(r"0s|\d+ms|(\d+h)?(\d+m)?\d+(\.\d+)?s")
ANTHROPIC_NAMES = [
    f"anthropic-ratelimit-{kind}-{field}"
    for kind in ("requests", "tokens", "input-tokens", "output-tokens")
    for field in ("limit", "remaining", "reset")
]
OPENAI_NAMES = [
    f"x-ratelimit-{field}-{kind}" for kind in ("requests", "tokens") for field in ("limit", "remaining", "reset")
]


def assert_anthropic_headers(headers: httpx2.Headers) -> None:
    for name in ANTHROPIC_NAMES:
        value = headers[name]
        assert RFC3339.fullmatch(value) if name.endswith("-reset") else re.fullmatch(r"\d+", value), (name, value)
    assert re.fullmatch(r"req_\w+", headers["request-id"])


def assert_openai_headers(headers: httpx2.Headers) -> None:
    for name in OPENAI_NAMES:
        value = headers[name]
        assert GO_DURATION.fullmatch(value) if "-reset-" in name else re.fullmatch(r"\d+", value), (name, value)
    assert re.fullmatch(r"req_[0-9a-f]{32}", headers["x-request-id"])


def test_anthropic_request_budget_429_then_recovers_when_clock_moves(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"keys": {ANTHROPIC_KEY: {"requests": 2, "period": 2}}})
    clock = manual_server.clock
    with make_anthropic(manual_server) as client:
        first = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=16, messages=user("one"))
        assert first.headers["anthropic-ratelimit-requests-remaining"] == "1"
        second = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=16, messages=user("two"))
        assert second.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert second.headers["anthropic-ratelimit-requests-reset"] == rfc3339(clock.wall() + 2.0)
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model=CLAUDE, max_tokens=16, messages=user("three"))
        err = info.value
        assert err.type == "rate_limit_error"
        assert err.response.headers["retry-after"] == "1"
        assert err.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert_anthropic_headers(err.response.headers)
        manual_server.advance(0.5)
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model=CLAUDE, max_tokens=16, messages=user("three"))
        assert info.value.response.headers["retry-after"] == "1"  # 0.5 s left, rounded up
        manual_server.advance(0.5)
        ok = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=16, messages=user("three"))
        assert ok.headers["anthropic-ratelimit-requests-remaining"] == "0"
        manual_server.advance(10)
        ok = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=16, messages=user("four"))
        assert ok.headers["anthropic-ratelimit-requests-remaining"] == "1"


def test_openai_token_budget_gives_exact_retry_after_and_reset(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"keys": {OPENAI_KEY: {"requests": 100, "tokens": 1000, "period": 60}}})
    prompt = user("x" * 40)  # 10 input tokens
    with make_openai(manual_server) as client:
        raw = client.chat.completions.with_raw_response.create(model=GPT, messages=prompt, max_completion_tokens=500)
        cc = raw.parse()
        assert cc.usage is not None and cc.usage.prompt_tokens == 10
        spent = cc.usage.total_tokens  # the unused part of max_completion_tokens was given back
        remaining = 1000 - spent
        assert raw.headers["x-ratelimit-remaining-tokens"] == str(remaining)
        assert raw.headers["x-ratelimit-remaining-requests"] == "99"
        assert raw.headers["x-ratelimit-reset-tokens"] == go_duration(spent * 60 / 1000)
        # Ask for 25 tokens more than the bucket holds: 25 / (1000/60 per s) = 1.5 s -> retry-after 2.
        want_max = remaining + 25 - 10
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=GPT, messages=prompt, max_completion_tokens=want_max)
        err = info.value
        assert (err.type, err.code) == ("tokens", "rate_limit_exceeded")
        assert err.response.headers["retry-after"] == "2"
        assert "Please try again in 1.5s" in err.message
        assert err.response.headers["x-ratelimit-reset-tokens"] == go_duration(spent * 60 / 1000)
        assert_openai_headers(err.response.headers)
        manual_server.advance(1.4)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=GPT, messages=prompt, max_completion_tokens=want_max)
        manual_server.advance(0.1)
        client.chat.completions.create(model=GPT, messages=prompt, max_completion_tokens=want_max)


def test_openai_request_budget_says_requests(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"defaults": {"requests": 1, "period": 30}})
    with make_openai(manual_server) as client:
        client.chat.completions.create(model=GPT, messages=user("hi"))
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(model=GPT, messages=user("hi"))
    assert (info.value.type, info.value.code) == ("requests", "rate_limit_exceeded")
    assert info.value.response.headers["retry-after"] == "30"
    assert info.value.response.headers["x-ratelimit-reset-requests"] == "30s"


def test_budgets_are_per_key(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"defaults": {"requests": 1}})
    with make_anthropic(manual_server, "key-a") as a, make_anthropic(manual_server, "key-b") as b:
        a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        b.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(anthropic.RateLimitError):
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))


def test_request_larger_than_the_bucket_is_refused(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"defaults": {"tokens": 100}})
    with make_anthropic(manual_server) as client, pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=CLAUDE, max_tokens=500, messages=user("hi"))
    assert int(info.value.response.headers["retry-after"]) >= 1


def test_separate_input_and_output_buckets_show_in_headers(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"defaults": {"tokens": 10_000, "input_tokens": 800, "output_tokens": 300}})
    with make_anthropic(manual_server) as client:
        raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=100, messages=user("a" * 400))
        msg = raw.parse()
        h = raw.headers
        assert h["anthropic-ratelimit-input-tokens-limit"] == "800"
        assert h["anthropic-ratelimit-input-tokens-remaining"] == str(800 - 100)
        assert h["anthropic-ratelimit-output-tokens-limit"] == "300"
        assert h["anthropic-ratelimit-output-tokens-remaining"] == str(300 - msg.usage.output_tokens)
        assert h["anthropic-ratelimit-tokens-remaining"] == str(10_000 - 100 - msg.usage.output_tokens)
        with pytest.raises(anthropic.RateLimitError) as info:
            client.messages.create(model=CLAUDE, max_tokens=100, messages=user("a" * 3000))
        assert "input tokens per minute" in info.value.message


def test_reset_restores_budgets_and_admin_clock_advance(manual_server: EmulatorServer) -> None:
    manual_server.set_scenario({"defaults": {"requests": 1, "period": 60}})
    with make_openai(manual_server) as client, httpx2.Client(base_url=manual_server.url) as admin:
        client.chat.completions.create(model=GPT, messages=user("hi"))
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=GPT, messages=user("hi"))
        assert admin.post("/_emulator/reset").json() == {"ok": True}
        client.chat.completions.create(model=GPT, messages=user("hi"))
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=GPT, messages=user("hi"))
        before = admin.get("/_emulator/clock").json()
        assert before["manual"] is True
        moved = admin.post("/_emulator/clock/advance", json={"seconds": 60}).json()
        assert moved["now"] == pytest.approx(before["now"] + 60)
        client.chat.completions.create(model=GPT, messages=user("hi"))
        assert admin.post("/_emulator/clock/advance", json={"seconds": -1}).status_code == 400


def test_clock_advance_on_real_clock_is_refused(server: EmulatorServer) -> None:
    with httpx2.Client(base_url=server.url) as admin:
        resp = admin.post("/_emulator/clock/advance", json={"seconds": 1})
    assert resp.status_code == 409
    assert "manual" in resp.json()["error"]["message"]


def test_scenario_can_ask_for_a_manual_clock() -> None:
    with EmulatorServer(scenario={"clock": "manual", "defaults": {"requests": 1, "period": 5}}) as srv:
        assert srv.clock.manual
        with make_anthropic(srv) as client:
            client.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
            with pytest.raises(anthropic.RateLimitError):
                client.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
            srv.advance(5)
            client.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))


def test_rate_limit_headers_on_every_response(server: EmulatorServer) -> None:
    server.set_scenario({"unknown_models": ["gone"], "keys": {"bad-key": {"behaviour": "invalid"}}})
    server.add_fault({"kind": "server_error", "model": "boom"})
    a_headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    o_headers = {"authorization": f"Bearer {OPENAI_KEY}"}
    msg = {"model": CLAUDE, "max_tokens": 8, "messages": user("hi")}
    chat = {"model": GPT, "messages": user("hi")}
    seen_ids: set[str] = set()
    with httpx2.Client(base_url=server.url) as http:
        anthropic_calls = [
            http.post("/v1/messages", json=msg, headers=a_headers),
            http.post("/v1/messages", json={**msg, "stream": True}, headers=a_headers),
            http.post("/v1/messages", json={**msg, "max_tokens": 0}, headers=a_headers),
            http.post("/v1/messages", json={**msg, "model": "gone"}, headers=a_headers),
            http.post("/v1/messages", json={**msg, "model": "boom"}, headers=a_headers),
            http.post("/v1/messages", json=msg, headers={**a_headers, "x-api-key": "bad-key"}),
            http.post("/v1/messages", json=msg, headers={"anthropic-version": "2023-06-01"}),
            http.post("/v1/messages/count_tokens", json=msg, headers=a_headers),
            http.get("/v1/models", headers=a_headers),
        ]
        openai_calls = [
            http.post("/v1/chat/completions", json=chat, headers=o_headers),
            http.post("/v1/chat/completions", json={**chat, "stream": True}, headers=o_headers),
            http.post("/v1/chat/completions", json={"model": GPT}, headers=o_headers),
            http.post("/v1/chat/completions", json={**chat, "model": "gone"}, headers=o_headers),
            http.post("/v1/chat/completions", json={**chat, "model": "boom"}, headers=o_headers),
            http.post("/v1/chat/completions", json=chat, headers={"authorization": "Bearer bad-key"}),
            http.post("/v1/chat/completions", json=chat),
            http.get("/v1/models", headers=o_headers),
        ]
    assert [r.status_code for r in anthropic_calls] == [200, 200, 400, 404, 500, 401, 401, 200, 200]
    assert [r.status_code for r in openai_calls] == [200, 200, 400, 404, 500, 401, 401, 200]
    for resp in anthropic_calls:
        assert_anthropic_headers(resp.headers)
        seen_ids.add(resp.headers["request-id"])
    for resp in openai_calls:
        assert_openai_headers(resp.headers)
        seen_ids.add(resp.headers["x-request-id"])
    assert len(seen_ids) == len(anthropic_calls) + len(openai_calls)
