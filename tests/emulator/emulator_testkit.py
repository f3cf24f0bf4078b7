"""Helpers shared by the emulator tests (a plain module so test files can import it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai

from pulsegate.emulator import EmulatorServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wire-examples"
ANTHROPIC_KEY = "test-key-anthropic"
OPENAI_KEY = "test-key-openai"
CLAUDE = "claude-sonnet-4-6"
GPT = "gpt-4.1"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """Parse an SSE body into (event name or None, decoded data) pairs; `[DONE]` stays a string."""
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data = ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data += line[len("data: ") :]
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


def make_anthropic(srv: EmulatorServer, key: str = ANTHROPIC_KEY, timeout: float = 10.0) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=srv.anthropic_base_url, max_retries=0, timeout=timeout)


def make_openai(srv: EmulatorServer, key: str = OPENAI_KEY, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=srv.openai_base_url, max_retries=0, timeout=timeout)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]
