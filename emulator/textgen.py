"""Deterministic answers and token estimates, the same for both providers.

Token model (documented): an input token is ~4 characters of text (`ceil(chars / 4)`, images count 85 tokens);
an output token is one piece of `re.findall(r"\\s*\\S{1,4}", text)` - up to four non-space characters with the
whitespace before them - so streamed deltas, `max_tokens` cuts and `output_tokens` always agree.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pulsegate.emulator.scenario import ReplyConfig

IMAGE_TOKENS = 85
_PIECE = re.compile(r"\s*\S{1,4}")
_FILLER = (
    "steady",
    "signal",
    "latency",
    "bucket",
    "window",
    "replica",
    "harbor",
    "lantern",
    "meadow",
    "quartz",
    "river",
    "summit",
    "timber",
    "velvet",
    "cobalt",
    "ember",
)


def estimate_tokens(chars: int) -> int:
    """~4 characters per token, rounded up; never below 1 for a non-empty input."""
    return (chars + 3) // 4


def pieces(text: str) -> list[str]:
    """The output tokens of `text` (see module docstring)."""
    return _PIECE.findall(text)


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated answer: visible text, why it stopped, and its output token count."""

    text: str
    parts: list[str]
    stop: str  # "end" | "max_tokens" | "stop_sequence"
    stop_sequence: str | None
    output_tokens: int


def reply_text(prompt: str, config: ReplyConfig) -> str:
    """A short sentence derived from the prompt (or the scenario's fixed text), plus optional filler words."""
    if config.text is not None:
        base = config.text
    else:
        words = prompt.split()[:8]
        snippet = " ".join(words)[:60] or "an empty message"
        base = f"This is an emulated reply to: {snippet}"
    if config.extra_words:
        rng = random.Random(zlib.crc32(prompt.encode("utf-8", "replace")))
        base += " " + " ".join(rng.choice(_FILLER) for _ in range(config.extra_words))
    return base


def answer(prompt: str, config: ReplyConfig, max_tokens: int | None, stops: Iterable[str]) -> Answer:
    """Generate the reply, cut at the earliest stop sequence, then at `max_tokens` output tokens."""
    text = reply_text(prompt, config)
    stop = "end"
    matched: str | None = None
    best = len(text)
    for seq in stops:
        if seq:
            idx = text.find(seq)
            if 0 <= idx < best:
                best, matched = idx, seq
    if matched is not None:
        text = text[:best]
        stop = "stop_sequence"
    parts = pieces(text)
    if max_tokens is not None and len(parts) > max_tokens:
        parts = parts[:max_tokens]
        text = "".join(parts)
        stop, matched = "max_tokens", None
    return Answer(text, parts, stop, matched, max(1, len(parts)))


def sample_value(schema: Any, depth: int = 0) -> Any:
    """A plausible value for a JSON Schema (enough for tool-call inputs): default, first example, first enum,
    else a placeholder by type."""
    if not isinstance(schema, dict) or depth > 4:
        return "example"
    if "default" in schema:
        return schema["default"]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [sample_value(schema.get("items"), depth + 1)]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        wanted = schema.get("required") or list(props)
        return {name: sample_value(props.get(name), depth + 1) for name in wanted}
    return "example"


def json_fragments(value: Any) -> tuple[str, list[str]]:
    """Serialise a tool input and split it into a few fragments, the way providers stream it."""
    text = json.dumps(value, separators=(",", ":"))
    step = max(1, len(text) // 3 + 1)
    return text, [text[i : i + step] for i in range(0, len(text), step)]


def mentions_tool(prompt: str, names: Iterable[str]) -> str | None:
    """The first tool whose name appears in the prompt: that is how a prompt 'asks' for a tool."""
    for name in names:
        if name and name in prompt:
            return name
    return None


@dataclass(slots=True)
class Ask:
    """What an inference request asks for, provider-neutral (filled by the provider's parser)."""

    model: str
    stream: bool
    prompt: str
    input_tokens: int
    max_tokens: int | None
    stops: tuple[str, ...] = ()
    tool: tuple[str, Any] | None = None  # (name, input value) when the answer is a tool call
    cache_prefix: tuple[int, int] | None = None  # (hash, tokens) of the cache_control prefix
    include_usage: bool = False
    end_user: str | None = None  # Anthropic metadata.user_id / OpenAI user: who the caller says the end user is


def tool_answer(name: str, value: Any) -> Answer:
    """The answer when a tool is called: a short lead-in sentence; the call itself is rendered per provider."""
    text = f"I'll use the {name} tool."
    parts = pieces(text)
    args, _ = json_fragments(value)
    return Answer(text, parts, "tool_use", None, len(parts) + estimate_tokens(len(args) + len(name)) + 8)
