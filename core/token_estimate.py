"""A cheap upper-ish estimate of a request's input tokens, for reserving tokens-per-minute before the call.

The reservation is settled to the provider's real count afterwards, so being roughly right is enough; being
cheap matters more (it runs on every call). ~4 characters per token for text, a flat cost per image/document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

CHARS_PER_TOKEN = 4
TOKENS_PER_IMAGE = 1_600
TOKENS_PER_MESSAGE = 4


def _block_chars(block: Mapping[str, Any]) -> tuple[int, int]:
    kind = block.get("type")
    if kind == "text":
        return len(block.get("text") or ""), 0
    if kind in ("image", "document"):
        return 0, TOKENS_PER_IMAGE
    if kind == "tool_use":
        return len(json.dumps(block.get("input", {}))) + len(block.get("name") or ""), 0
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return len(content), 0
        if isinstance(content, Sequence):
            chars = flat = 0
            for inner in content:
                if isinstance(inner, Mapping):
                    c, f = _block_chars(inner)
                    chars, flat = chars + c, flat + f
            return chars, flat
        return 0, 0
    if kind == "thinking":
        return len(block.get("thinking") or ""), 0
    return 0, 0


def estimate_input_tokens(
    system: str | Sequence[Mapping[str, Any]] | None,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    chars = 0
    flat = 0
    if isinstance(system, str):
        chars += len(system)
    elif system:
        chars += sum(len(block.get("text") or "") for block in system)
    for message in messages:
        flat += TOKENS_PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, Sequence):
            for block in content:
                if isinstance(block, Mapping):
                    c, f = _block_chars(block)
                    chars, flat = chars + c, flat + f
    if tools:
        chars += len(json.dumps(list(tools)))
    return chars // CHARS_PER_TOKEN + flat + 1


def estimate_output_tokens(text: str) -> int:
    """The output tokens a partial answer of ``text`` cost, at the same ~4 characters per token (0 for no text):
    what a stream that broke or was abandoned is charged for beyond what the provider reported."""
    return -(-len(text) // CHARS_PER_TOKEN)
