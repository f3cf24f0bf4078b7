"""The gateway as an app sees it: the official Python SDKs pointed at a gateway process (base URL + gateway token),
in front of the emulator — answers, streams, errors in each SDK's own format, and a row per attempt."""

from __future__ import annotations

import time

import anthropic
import httpx2 as httpx
import openai
import pytest

from pulsegate.core.masking import fingerprint
from pulsegate.emulator import EmulatorServer
from tests.gateway.conftest import ANTHROPIC_KEYS, OPENAI_KEYS

MESSAGES = [{"role": "user", "content": "Say hello through the gateway"}]


def provider_requests(emu: EmulatorServer, route: str) -> int:
    keys = {fingerprint(k) for k in ANTHROPIC_KEYS + OPENAI_KEYS}
    return sum(row["count"] for row in emu.stats()["counts"] if row["route"] == route and row["key"] in keys)


def test_both_sdks_get_their_own_answers_and_each_call_is_one_gateway_row(start_gateway, emu) -> None:
    gateway = start_gateway()
    token = gateway.token("checkout-web", "--rpm", "600")
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=token)

    raw = oai.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MESSAGES, max_tokens=64)
    completion = raw.parse()
    message = ant.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES)

    assert completion.choices[0].message.content.startswith("This is an emulated reply")
    assert message.content[0].text.startswith("This is an emulated reply")
    assert raw.headers["x-pulsegate-provider"] == "openai"
    assert raw.headers["x-pulsegate-fell-back"] == "false"
    assert raw.headers["x-ratelimit-limit-requests"] == "600"  # the app's own limit, not the upstream key's
    assert raw.headers["x-ratelimit-remaining-requests"] == "599"
    assert raw.headers["x-request-id"]
    rows = gateway.rows(wait_for=2)
    assert [(r["source"], r["app"], r["provider"], r["outcome"], r["is_final"]) for r in rows] == [
        ("gateway", "checkout-web", "openai", "success", True),
        ("gateway", "checkout-web", "anthropic", "success", True),
    ]
    assert str(rows[0]["call_id"]).replace("-", "") == raw.headers["x-pulsegate-call-id"].replace("-", "")
    assert rows[0]["input_tokens"] == completion.usage.prompt_tokens
    assert rows[0]["output_tokens"] == completion.usage.completion_tokens
    assert rows[1]["input_tokens"] == message.usage.input_tokens
    assert rows[1]["output_tokens"] == message.usage.output_tokens
    assert all(r["cost_usd"] and r["cost_usd"] > 0 and not r["unpriced"] for r in rows)
    assert provider_requests(emu, "openai.chat_completions") == 1
    assert provider_requests(emu, "anthropic.messages") == 1


def test_streams_arrive_as_events_and_an_openai_stream_is_priced_though_it_asked_no_usage(start_gateway) -> None:
    gateway = start_gateway()
    token = gateway.token("chat")
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=token)

    chunks = list(oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=64, stream=True))
    with ant.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    openai_text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert openai_text.startswith("This is an emulated reply")
    assert not any(c.usage for c in chunks)  # the usage chunk the gateway asked for is not passed on
    assert text.startswith("This is an emulated reply")
    rows = gateway.rows(wait_for=2)
    assert [(r["provider"], r["streamed"], r["outcome"]) for r in rows] == [
        ("openai", True, "success"),
        ("anthropic", True, "success"),
    ]
    assert rows[0]["output_tokens"] > 0 and rows[0]["input_tokens"] > 0  # exact, from the usage chunk
    assert rows[0]["cost_usd"] > 0 and not rows[0]["usage_estimated"]
    assert rows[1]["output_tokens"] == final.usage.output_tokens
    assert all(r["ttft_ms"] is not None and r["ttft_ms"] >= 0 for r in rows)


def test_an_openai_stream_that_asked_for_usage_keeps_its_usage_chunk(start_gateway) -> None:
    gateway = start_gateway()
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.token("chat"))
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4.1", messages=MESSAGES, max_tokens=64, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1
    (row,) = gateway.rows(wait_for=1)
    assert (row["input_tokens"], row["output_tokens"]) == (usage[0].prompt_tokens, usage[0].completion_tokens)


def test_bad_and_revoked_tokens_are_refused_in_each_format_and_revocation_lands_within_a_second(
    start_gateway, emu
) -> None:
    gateway = start_gateway()
    token = gateway.token("billing")
    with pytest.raises(openai.AuthenticationError) as openai_error:
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="pgw_" + "x" * 40, max_retries=0).chat.completions.create(
            model="gpt-4.1", messages=MESSAGES
        )
    with pytest.raises(anthropic.AuthenticationError) as anthropic_error:
        anthropic.Anthropic(base_url=gateway.url, api_key="nope").messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES
        )
    assert openai_error.value.response.headers["x-should-retry"] == "false"
    assert anthropic_error.value.body["error"]["type"] == "authentication_error"

    ant = anthropic.Anthropic(base_url=gateway.url, api_key=token, max_retries=0)
    ant.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)
    prefix = token[:12]
    code, out, err = gateway.cli("gateway-token", "revoke", prefix)
    assert code == 0, err
    assert f"token {prefix} of app 'billing' revoked" in out
    revoked_at = time.monotonic()
    while True:
        try:
            ant.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=MESSAGES)
        except anthropic.AuthenticationError:
            break
        assert time.monotonic() - revoked_at < 1.5, "a revoked token was still accepted after 1.5 s"
        time.sleep(0.05)
    assert provider_requests(emu, "anthropic.messages") >= 1
    listed = gateway.cli("gateway-token", "list")[1]
    assert prefix in listed and "revoked" in listed and token not in listed


def test_unknown_paths_bad_bodies_and_oversize_bodies_get_clear_errors_in_the_callers_format(start_gateway) -> None:
    gateway = start_gateway(GATEWAY_MAX_BODY_MB="0.01")
    token = gateway.token("web")
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        oai.moderations.create(input="hi")
    assert "no such endpoint: POST /v1/moderations" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="gpt-4.1", messages=[])
    assert "messages: must be a non-empty list" in bad.value.message
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=token, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as no_max:
        ant.post("/v1/messages", body={"model": "claude-sonnet-4-6", "messages": MESSAGES}, cast_to=object)
    assert no_max.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "invalid request: max_tokens: is required",
    }
    with pytest.raises(anthropic.APIStatusError) as too_big:
        ant.messages.create(
            model="claude-sonnet-4-6", max_tokens=8, messages=[{"role": "user", "content": "x" * 20_000}]
        )
    assert too_big.value.status_code == 413
    assert "over the gateway's limit of 0.01 MB" in too_big.value.body["error"]["message"]
    with httpx.Client() as http:
        malformed = http.post(
            f"{gateway.url}/v1/chat/completions",
            content=b"{not json",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )
        wrong_type = http.post(
            f"{gateway.url}/v1/messages",
            content=b"{}",
            headers={"x-api-key": token, "content-type": "text/plain"},
        )
    assert malformed.status_code == 400 and malformed.json()["error"]["message"].startswith(
        "invalid request: body: is not valid JSON"
    )
    assert wrong_type.status_code == 415 and wrong_type.json()["type"] == "error"
    assert gateway.rows() == []  # nothing left the gateway


def test_an_app_over_its_own_rpm_gets_a_429_with_an_integer_retry_after_and_a_row(start_gateway, emu) -> None:
    gateway = start_gateway()
    token = gateway.token("batch", "--rpm", "2")
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)
    for _ in range(2):
        oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=8)
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=8)
    retry_after = limited.value.response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 30
    assert limited.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert provider_requests(emu, "openai.chat_completions") == 2
    rows = gateway.rows(wait_for=3)
    assert [(r["outcome"], r["error_class"], r["key_label"]) for r in rows][-1] == ("error", "user_rate_limited", None)


def test_provider_keys_and_tokens_never_reach_a_response_or_the_log(start_gateway) -> None:
    gateway = start_gateway()
    token = gateway.token("audit")
    with httpx.Client() as http:
        answers = [
            http.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "gpt-4.1", "messages": MESSAGES},
                headers={"authorization": f"Bearer {token}"},
            ),
            http.post(
                f"{gateway.url}/v1/messages",
                json={"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": MESSAGES, "stream": True},
                headers={"x-api-key": token},
            ),
            http.get(f"{gateway.url}/v1/whatever", headers={"x-api-key": token}),
        ]
    gateway.rows(wait_for=2)
    gateway.process.stop()
    seen = "".join(a.text + str(dict(a.headers)) for a in answers) + gateway.process.output
    for secret in [token, *ANTHROPIC_KEYS, *OPENAI_KEYS]:
        assert secret not in seen
    assert [a.status_code for a in answers] == [200, 200, 404]


HOSTILE_BODIES = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"\xff\xfe\x00garbage",
    b'{"model": 5, "messages": []}',
    b'{"model": "gpt-4.1\\u0000x", "messages": [{"role": "user", "content": "hi"}]}',
    b'{"model": "gpt-4.1", "messages": [1, 2]}',
    b'{"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
    b'{"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}',
    b'{"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}], "user": "a\\nb"}',
    b'{"model": "' + b"m" * 300 + b'", "messages": [{"role": "user", "content": "hi"}]}',
    b"{" * 5000 + b"}" * 5000,
]


def test_hostile_input_is_never_a_500_nor_a_traceback_and_sends_nothing(start_gateway, emu) -> None:
    gateway = start_gateway()
    token = gateway.token("fuzz")
    answers = []
    with httpx.Client(timeout=10) as http:
        for path in ("/v1/chat/completions", "/v1/messages"):
            for body in HOSTILE_BODIES:
                answers.append(
                    http.post(
                        f"{gateway.url}{path}",
                        content=body,
                        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
                    )
                )
        answers.append(
            http.post(
                f"{gateway.url}/v1/messages",
                json={"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": MESSAGES},
                headers={"x-api-key": token, "x-pulsegate-timeout": "nan", "x-pulsegate-feature": "a\tb"},
            )
        )
    assert {a.status_code for a in answers} == {400}
    for answer in answers:
        text = answer.text
        assert "Traceback" not in text and 'File "' not in text
        assert answer.json()  # a JSON error body in the caller's format
    assert provider_requests(emu, "openai.chat_completions") + provider_requests(emu, "anthropic.messages") == 0
    gateway.process.stop()
    assert "Traceback" not in gateway.process.output


def test_both_sdks_list_and_retrieve_models_in_their_own_format(start_gateway, emu) -> None:
    gateway = start_gateway()
    token = gateway.token("web")
    oai = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=token, max_retries=0)
    ant = anthropic.Anthropic(base_url=gateway.url, api_key=token, max_retries=0)
    openai_models = [m.id for m in oai.models.list()]
    anthropic_models = [m.id for m in ant.models.list()]
    assert "gpt-4.1" in openai_models and not any(m.startswith("claude") for m in openai_models)
    assert "claude-sonnet-4-6" in anthropic_models and not any(m.startswith("gpt") for m in anthropic_models)
    assert oai.models.retrieve("gpt-4.1").id == "gpt-4.1"
    assert ant.models.retrieve("claude-sonnet-4-6").id == "claude-sonnet-4-6"
    assert gateway.rows() == []  # a listing is free: not an attempt
