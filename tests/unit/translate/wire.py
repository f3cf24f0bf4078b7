"""Loaders for the recorded provider bodies in ``tests/fixtures/wire-examples``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WIRE_EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "wire-examples"


def load_json(name: str) -> dict[str, Any]:
    """A JSON body, e.g. ``load_json("openai/chat_success.json")``."""
    return json.loads((WIRE_EXAMPLES / name).read_text())


def sse_data(name: str) -> list[dict[str, Any]]:
    """The JSON of every ``data:`` line of an SSE body, in order; the OpenAI ``[DONE]`` terminator is left out."""
    events: list[dict[str, Any]] = []
    for line in (WIRE_EXAMPLES / name).read_text().splitlines():
        if line.startswith("data:"):
            payload = line.removeprefix("data:").strip()
            if payload != "[DONE]":
                events.append(json.loads(payload))
    return events
