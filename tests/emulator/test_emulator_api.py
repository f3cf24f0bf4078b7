"""Behaviour of the API surface: auth styles, models per asking SDK, validation, generation rules, stats, admin."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httptools
import httpx2
import openai
import pytest
from emulator_testkit import ANTHROPIC_KEY, CLAUDE, GPT, OPENAI_KEY, make_anthropic, make_openai, user

from pulsegate.emulator import EmulatorError, EmulatorServer, serve
from pulsegate.emulator.server import check_loopback


def fp(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


# -- auth --------------------------------------------------------------------------------------------------
def test_anthropic_accepts_x_api_key_and_bearer(server: EmulatorServer) -> None:
    body = {"model": CLAUDE, "max_tokens": 16, "messages": user("hi")}
    with httpx2.Client(base_url=server.url) as http:
        old = http.post("/v1/messages", json=body, headers={"x-api-key": "key-old", "anthropic-version": "2023-06-01"})
        new = http.post(
            "/v1/messages", json=body, headers={"authorization": "Bearer key-new", "anthropic-version": "2026-10-21"}
        )
    assert old.status_code == new.status_code == 200
    routes = server.stats()["routes"]["anthropic.messages"]["200"]
    assert routes == {fp("key-old"): 1, fp("key-new"): 1}


@pytest.mark.parametrize(
    "headers", [{}, {"x-api-key": ""}, {"authorization": "Bearer"}], ids=["none", "x-api-key", "bearer"]
)
def test_missing_or_empty_credential_is_401_in_each_shape(server: EmulatorServer, headers: dict[str, str]) -> None:
    with httpx2.Client(base_url=server.url) as http:
        a = http.post(
            "/v1/messages",
            json={"model": CLAUDE, "max_tokens": 8, "messages": user("hi")},
            headers={"anthropic-version": "2023-06-01", **headers},
        )
        o = http.post("/v1/chat/completions", json={"model": GPT, "messages": user("hi")}, headers=headers)
    assert a.status_code == 401 and a.json()["error"]["type"] == "authentication_error"
    assert a.json()["type"] == "error" and a.json()["request_id"] == a.headers["request-id"]
    assert o.status_code == 401 and o.json()["error"]["type"] == "invalid_request_error"
    assert set(o.json()["error"]) == {"message", "type", "param", "code"}
    assert server.stats()["routes"]["anthropic.messages"]["401"] == {"-": 1}


def test_default_behaviour_invalid_rejects_unlisted_keys(server: EmulatorServer) -> None:
    server.set_scenario({"defaults": {"behaviour": "invalid"}, "keys": {"key-good": {"behaviour": "ok"}}})
    with make_anthropic(server, "key-good") as good, make_anthropic(server, "key-other") as other:
        good.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(anthropic.AuthenticationError):
            other.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(anthropic.AuthenticationError):
            other.models.list()


def test_billing_key_fails_inference_but_lists_models(server: EmulatorServer) -> None:
    server.set_scenario({"keys": {"key-broke": {"behaviour": "billing"}}})
    with make_anthropic(server, "key-broke") as a, make_openai(server, "key-broke") as o:
        assert a.models.list().data
        with pytest.raises(anthropic.PaymentRequiredError):
            a.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(openai.RateLimitError) as info:
            o.chat.completions.create(model=GPT, messages=user("hi"))
    assert info.value.code == "insufficient_quota"
    assert "x-should-retry" not in info.value.response.headers  # the real API does not send it either


# -- models ------------------------------------------------------------------------------------------------
def test_models_answer_in_the_asking_sdks_format(claude: anthropic.Anthropic, gpt: openai.OpenAI) -> None:
    a_page = claude.models.list(limit=1)
    assert [m.id for m in a_page.data] == ["claude-opus-4-8"] and a_page.has_more
    assert a_page.data[0].type == "model" and a_page.data[0].display_name == "Claude Opus 4.8"
    second = claude.models.list(limit=1, after_id="claude-opus-4-8")
    assert [m.id for m in second.data] == ["claude-sonnet-4-6"]
    assert claude.models.retrieve("claude-haiku-4-5").display_name == "Claude Haiku 4.5"
    o_ids = [m.id for m in gpt.models.list()]
    assert "gpt-4.1" in o_ids and not any(i.startswith("claude") for i in o_ids)
    assert gpt.models.retrieve("gpt-4.1-nano").owned_by == "system"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("claude-nope")
    with pytest.raises(openai.NotFoundError) as info:
        gpt.models.retrieve("gpt-nope")
    assert info.value.code == "model_not_found"


def test_models_from_scenario_accept_plain_ids(server: EmulatorServer) -> None:
    server.set_scenario({"models": {"anthropic": ["claude-x-1"], "openai": ["gpt-x"]}})
    with make_anthropic(server) as a, make_openai(server) as o:
        assert [(m.id, m.display_name) for m in a.models.list()] == [("claude-x-1", "Claude X 1")]
        assert [m.id for m in o.models.list()] == ["gpt-x"]


# -- validation --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"max_tokens": 8, "messages": user("hi")}, "model: Field required"),
        ({"model": CLAUDE, "max_tokens": 8}, "messages: Field required"),
        ({"model": CLAUDE, "max_tokens": 0, "messages": user("hi")}, "greater than or equal to 1"),
        ({"model": CLAUDE, "max_tokens": 8, "messages": [{"role": "bot", "content": "x"}]}, "messages.0.role"),
        ({"model": CLAUDE, "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}, "system"),
        ({"model": CLAUDE, "max_tokens": 8, "messages": []}, "at least one message"),
    ],
)
def test_anthropic_validation(claude: anthropic.Anthropic, body: dict[str, object], fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.post("/v1/messages", body=body, cast_to=anthropic.types.Message)
    assert info.value.type == "invalid_request_error"
    assert fragment in info.value.body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": user("hi")}, None, None),
        ({"model": GPT}, "messages", "missing_required_parameter"),
        ({"model": GPT, "messages": []}, "messages", "empty_array"),
        ({"model": GPT, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        (
            {"model": GPT, "messages": user("x"), "max_completion_tokens": 0},
            "max_completion_tokens",
            "integer_below_min_value",
        ),
    ],
)
def test_openai_validation(gpt: openai.OpenAI, body: dict[str, object], param: str | None, code: str | None) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gpt.post("/chat/completions", body=body, cast_to=openai.types.chat.ChatCompletion)
    assert (info.value.type, info.value.param, info.value.code) == ("invalid_request_error", param, code)


def test_bad_json_and_unknown_routes(server: EmulatorServer) -> None:
    with httpx2.Client(base_url=server.url) as http:
        bad = http.post(
            "/v1/messages", content=b"{not json", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}
        )
        nowhere = http.get("/v2/whatever", headers={"authorization": "Bearer k"})
        wrong = http.get("/v1/chat/completions", headers={"authorization": "Bearer k"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert nowhere.status_code == 404 and "x-request-id" in nowhere.headers
    assert "x-ratelimit-remaining-requests" in nowhere.headers
    assert wrong.status_code == 405


def test_anthropic_context_window(server: EmulatorServer) -> None:
    server.set_scenario({"context_window": {"anthropic": 500}})
    with make_anthropic(server) as client, pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=CLAUDE, max_tokens=400, messages=user("w" * 800))
    assert "exceed context limit: 200 + 400 > 500" in info.value.message


# -- generation --------------------------------------------------------------------------------------------
def test_answers_are_deterministic_and_count_tokens(claude: anthropic.Anthropic, gpt: openai.OpenAI) -> None:
    one = claude.messages.create(model=CLAUDE, max_tokens=64, messages=user("Tell me about rivers"))
    two = claude.messages.create(model=CLAUDE, max_tokens=64, messages=user("Tell me about rivers"))
    assert one.content[0].text == two.content[0].text == "This is an emulated reply to: Tell me about rivers"
    assert one.usage.input_tokens == 5  # 20 characters / 4
    assert one.usage.output_tokens == 14  # This| is| an| emul|ated| repl|y| to:| Tell| me| abou|t| rive|rs
    cc = gpt.chat.completions.create(model=GPT, messages=user("Tell me about rivers"))
    assert cc.choices[0].message.content == one.content[0].text
    assert cc.usage is not None and (cc.usage.prompt_tokens, cc.usage.completion_tokens) == (5, 14)
    assert claude.messages.count_tokens(model=CLAUDE, messages=user("Tell me about rivers")).input_tokens == 5


def test_max_tokens_and_stop_sequences(claude: anthropic.Anthropic, gpt: openai.OpenAI) -> None:
    cut = claude.messages.create(model=CLAUDE, max_tokens=3, messages=user("Tell me about rivers"))
    assert (cut.stop_reason, cut.usage.output_tokens, cut.content[0].text) == ("max_tokens", 3, "This is an")
    stop = claude.messages.create(
        model=CLAUDE, max_tokens=64, messages=user("Tell me about rivers"), stop_sequences=["emulated", "zzz"]
    )
    assert (stop.stop_reason, stop.stop_sequence, stop.content[0].text) == ("stop_sequence", "emulated", "This is an ")
    length = gpt.chat.completions.create(model=GPT, messages=user("rivers"), max_completion_tokens=2)
    assert length.choices[0].finish_reason == "length" and length.usage is not None
    assert length.usage.completion_tokens == 2 and length.choices[0].message.content == "This is"
    legacy = gpt.chat.completions.create(model=GPT, messages=user("rivers"), max_tokens=2)
    assert legacy.choices[0].finish_reason == "length"
    stopped = gpt.chat.completions.create(model=GPT, messages=user("rivers"), stop="reply")
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == "This is an emulated "


def test_reply_config_text_and_filler(server: EmulatorServer) -> None:
    server.set_scenario({"reply": {"extra_words": 30}})
    with make_anthropic(server) as client:
        a = client.messages.create(model=CLAUDE, max_tokens=500, messages=user("same prompt"))
        b = client.messages.create(model=CLAUDE, max_tokens=500, messages=user("same prompt"))
    assert a.content[0].text == b.content[0].text
    assert len(a.content[0].text.split()) == 8 + 30  # "This is an emulated reply to: same prompt" + filler


def test_tool_use_when_prompt_names_a_tool_or_scenario_says_so(server: EmulatorServer) -> None:
    tools = [{"name": "lookup_order", "input_schema": {"type": "object", "properties": {"id": {"type": "integer"}}}}]
    with make_anthropic(server) as client:
        plain = client.messages.create(model=CLAUDE, max_tokens=64, messages=user("hello"), tools=tools)
        assert plain.stop_reason == "end_turn"
        asked = client.messages.create(model=CLAUDE, max_tokens=64, messages=user("use lookup_order"), tools=tools)
        assert asked.stop_reason == "tool_use" and asked.content[1].input == {"id": 1}
        server.set_scenario({"reply": {"tool_use": True}})
        forced = client.messages.create(model=CLAUDE, max_tokens=64, messages=user("hello"), tools=tools)
        assert forced.stop_reason == "tool_use"
        history = [
            {"role": "user", "content": "hello"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup_order", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"}]},
        ]
        after = client.messages.create(model=CLAUDE, max_tokens=64, messages=history, tools=tools)
        assert after.stop_reason == "end_turn"
        none = client.messages.create(
            model=CLAUDE, max_tokens=64, messages=user("hello"), tools=tools, tool_choice={"type": "none"}
        )
        assert none.stop_reason == "end_turn"


def test_prompt_cache_tokens(claude: anthropic.Anthropic) -> None:
    system = [{"type": "text", "text": "s" * 4000, "cache_control": {"type": "ephemeral"}}]
    first = claude.messages.create(model=CLAUDE, max_tokens=16, system=system, messages=user("q" * 40))
    second = claude.messages.create(model=CLAUDE, max_tokens=16, system=system, messages=user("q" * 40))
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (1000, 0)
    assert (second.usage.cache_creation_input_tokens, second.usage.cache_read_input_tokens) == (0, 1000)
    assert first.usage.input_tokens == second.usage.input_tokens == 10


def test_openai_stream_without_include_usage_has_no_usage(gpt: openai.OpenAI) -> None:
    chunks = list(gpt.chat.completions.create(model=GPT, messages=user("hi"), stream=True))
    assert all(c.choices for c in chunks)
    raw = gpt.chat.completions.with_raw_response.create(model=GPT, messages=user("hi"), stream=True)
    text = raw.http_response.read().decode()
    assert '"usage"' not in text and text.endswith("data: [DONE]\n\n")


async def test_async_clients_work(server: EmulatorServer) -> None:
    async with (
        anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, base_url=server.anthropic_base_url, max_retries=0) as a,
        openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=server.openai_base_url, max_retries=0) as o,
    ):
        msg = await a.messages.create(model=CLAUDE, max_tokens=32, messages=user("async"))
        async with a.messages.stream(model=CLAUDE, max_tokens=32, messages=user("async")) as stream:
            text = await stream.get_final_text()
        assert text == msg.content[0].text
        parts = [
            c.choices[0].delta.content or ""
            async for c in await o.chat.completions.create(model=GPT, messages=user("async"), stream=True)
            if c.choices
        ]
        assert "".join(parts) == msg.content[0].text


# -- HTTP details ------------------------------------------------------------------------------------------
def test_keep_alive_and_pipelining_on_one_socket(server: EmulatorServer) -> None:
    body = b'{"model":"gpt-4.1","messages":[{"role":"user","content":"hi"}]}'
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    statuses: list[int] = []

    class Responses:
        def on_message_complete(self) -> None:
            statuses.append(parser.get_status_code())

    parser = httptools.HttpResponseParser(Responses())

    def read_until(count: int) -> None:
        while len(statuses) < count:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            parser.feed_data(chunk)

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request * 3)  # pipelined
        read_until(3)
        sock.sendall(request)  # the connection is still usable
        read_until(4)
    assert statuses == [200, 200, 200, 200]
    assert server.stats()["total"] == 4


def test_chunked_request_body(server: EmulatorServer) -> None:
    def parts() -> object:
        yield b'{"model":"gpt-4.1",'
        yield b'"messages":[{"role":"user","content":"chunked"}]}'

    with httpx2.Client(base_url=server.url) as http:
        resp = http.post("/v1/chat/completions", content=parts(), headers={"authorization": "Bearer k"})
    assert resp.status_code == 200 and "chunked" in resp.json()["choices"][0]["message"]["content"]


# -- stats, reset, admin -----------------------------------------------------------------------------------
def test_stats_count_route_status_and_key_exactly(server: EmulatorServer) -> None:
    server.set_scenario({"keys": {"key-bad": {"behaviour": "invalid"}}})
    with (
        make_anthropic(server, "key-1") as a1,
        make_anthropic(server, "key-bad") as bad,
        make_openai(server, "key-2") as o,
    ):
        for _ in range(3):
            a1.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        with pytest.raises(anthropic.AuthenticationError):
            bad.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        o.chat.completions.create(model=GPT, messages=user("hi"))
        o.models.list()
        a1.messages.count_tokens(model=CLAUDE, messages=user("hi"))
    stats = server.stats()
    assert stats["total"] == 7
    assert stats["routes"] == {
        "anthropic.count_tokens": {"200": {fp("key-1"): 1}},
        "anthropic.messages": {"200": {fp("key-1"): 3}, "401": {fp("key-bad"): 1}},
        "openai.chat_completions": {"200": {fp("key-2"): 1}},
        "openai.models": {"200": {fp("key-2"): 1}},
    }
    assert {"route": "anthropic.messages", "status": 200, "key": fp("key-1"), "count": 3} in stats["counts"]
    with httpx2.Client(base_url=server.url) as admin:
        assert admin.get("/_emulator/stats").json() == stats
        admin.post("/_emulator/reset")
    assert server.stats() == {"total": 0, "routes": {}, "counts": [], "faults": {}, "end_users": {}}


def test_put_scenario_validates_and_keeps_the_old_one(server: EmulatorServer) -> None:
    with httpx2.Client(base_url=server.url) as admin:
        good = {"keys": {"key-x": {"behaviour": "invalid"}}, "latency": {"kind": "fixed", "ms": 0}}
        assert admin.put("/_emulator/scenario", json=good).status_code == 200
        current = admin.get("/_emulator/scenario").json()
        bad = admin.put("/_emulator/scenario", json={"keys": {"key-x": {"behaviour": "sleepy"}}})
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert error["type"] == "scenario_error" and error["field"] == 'keys."key-x".behaviour'
        assert "'ok', 'invalid'" in error["message"] and "sleepy" in error["message"]
        assert admin.get("/_emulator/scenario").json() == current
        typo = admin.put("/_emulator/scenario", json={"faults": [{"kind": "reset", "rat": 0.5}]})
        assert typo.status_code == 400 and typo.json()["error"]["field"] == "faults[0].rat"
        assert admin.put("/_emulator/scenario", content=b"{oops").status_code == 400
        toml = b'[keys."key-y"]\nbehaviour = "permission"\n'
        ok = admin.put("/_emulator/scenario", content=toml, headers={"content-type": "application/toml"})
        assert ok.status_code == 200
        assert admin.put("/_emulator/scenario", json=admin.get("/_emulator/scenario").json()).status_code == 200
        assert admin.get("/_emulator/nothing").status_code == 404
        assert admin.get("/_emulator/health").json() == {"ok": True}
    with make_anthropic(server, "key-x") as x, make_anthropic(server, "key-y") as y:
        x.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))  # the old rule is gone
        with pytest.raises(anthropic.PermissionDeniedError):
            y.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))


def test_admin_can_add_a_fault(server: EmulatorServer) -> None:
    with httpx2.Client(base_url=server.url) as admin:
        assert admin.post("/_emulator/faults", json={"kind": "overloaded", "count": 1}).json()["faults"] == 1
        bad = admin.post("/_emulator/faults", json={"kind": "error"})
        assert bad.status_code == 400 and bad.json()["error"]["field"] == "fault.status"
    with make_anthropic(server) as client:
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))
        client.messages.create(model=CLAUDE, max_tokens=8, messages=user("hi"))


# -- binding -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])
def test_refuses_non_loopback_bind(host: str) -> None:
    with pytest.raises(EmulatorError, match=f"refusing to bind the emulator to {host}: it binds to loopback only"):
        EmulatorServer(host=host)
    with pytest.raises(EmulatorError, match="loopback only"):
        serve(host=host, port=0)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"])
def test_accepts_loopback_hosts(host: str) -> None:
    check_loopback(host)


def test_localhost_server_urls() -> None:
    with EmulatorServer(host="localhost") as srv:
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        assert srv.openai_base_url == srv.url + "/v1" and srv.anthropic_base_url == srv.url
        with make_openai(srv) as client:
            client.models.list()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_in_the_foreground_and_exits_on_sigterm(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[keys."key-x"]\nbehaviour = "invalid"\n')
    port = _free_port()
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "pulsegate.emulator", "--port", str(port), "--scenario", str(scenario)]
    proc = subprocess.Popen(cmd, cwd=root, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with httpx2.Client(base_url=f"http://127.0.0.1:{port}") as http:
                    resp = http.get("/v1/models", headers={"authorization": "Bearer key-x"})
                break
            except httpx2.ConnectError:
                assert time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.05)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert f"listening on http://127.0.0.1:{port}" in stderr


def test_cli_reports_a_bad_scenario_in_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text("[latency]\nkind = 'gaussian'\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "pulsegate.emulator", "--scenario", str(scenario)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {scenario}: latency.kind: expected one of 'none', 'fixed', 'uniform', 'lognormal', got 'gaussian'"
    )
