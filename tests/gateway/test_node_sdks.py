"""The gateway from Node: the official ``openai`` and ``@anthropic-ai/sdk`` packages (pinned in
tests/gateway/node/package-lock.json, installed by ``make install``) run by ``node`` against a gateway process —
answers and streams in each SDK's own shape, refusals as each SDK's own error classes, a fallback in Anthropic form."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_gateway_sdks import provider_requests

NODE_DIR = Path(__file__).resolve().parent / "node"


def _node_ready() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if (
        not (NODE_DIR / "node_modules" / "openai").is_dir()
        or not (NODE_DIR / "node_modules" / "@anthropic-ai").is_dir()
    ):
        return "the Node SDKs are not installed: run `make install` (npm ci in tests/gateway/node)"
    return None


@pytest.fixture(autouse=True)
def node_sdks() -> None:
    problem = _node_ready()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def run_node(case: str, url: str, token: str) -> dict[str, Any]:
    result = subprocess.run(
        ["node", "clients.mjs", case],
        cwd=NODE_DIR,
        env={"PATH": os.environ["PATH"], "GATEWAY_URL": url, "GATEWAY_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_node_sdks_get_their_own_answers_and_streams(start_gateway, emu) -> None:
    gateway = start_gateway()
    got = run_node("answers", gateway.url, gateway.token("node-web"))
    for field in ("openai", "openaiStreamed", "anthropic", "anthropicStreamed"):
        assert got[field].startswith("This is an emulated reply to: Say hello from Node"), field
    assert got["usageChunks"] == 0  # the usage chunk the gateway asked for is not passed on
    assert got["anthropicFinal"] == got["anthropicStreamed"] and got["anthropicOutputTokens"] > 0
    rows = gateway.rows(wait_for=4)
    assert [(r["provider"], r["streamed"], r["outcome"], r["app"]) for r in rows] == [
        ("openai", False, "success", "node-web"),
        ("openai", True, "success", "node-web"),
        ("anthropic", False, "success", "node-web"),
        ("anthropic", True, "success", "node-web"),
    ]


def test_node_sdks_raise_their_own_error_classes_and_do_not_retry(start_gateway, emu) -> None:
    gateway = start_gateway()
    got = run_node("refused", gateway.url, gateway.token("node-web"))
    assert got == {
        "openai": {"name": "AuthenticationError", "status": 401},
        "anthropic": {"name": "AuthenticationError", "status": 401},
        "notFound": {"name": "NotFoundError", "status": 404},
    }
    assert gateway.rows() == []


def test_a_fallback_reaches_the_node_anthropic_sdk_in_anthropic_form(start_gateway, emu) -> None:
    gateway = start_gateway()
    emu.set_scenario({"faults": [{"kind": "overloaded", "provider": "anthropic"}]})
    got = run_node("fallback", gateway.url, gateway.token("node-web"))
    assert got["type"] == "message" and got["stopReason"] == got["streamedStopReason"] == "end_turn"
    assert got["text"].startswith("This is an emulated reply") and got["streamedText"] == got["text"]
    assert provider_requests(emu, "openai.chat_completions") == 2
    assert provider_requests(emu, "anthropic.messages") == 4  # each call: the gateway's retry of the 529, then OpenAI
