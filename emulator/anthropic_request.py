"""Anthropic Messages requests: validation (400 messages in the API's wording), token estimates, tool choice.

Turns a `POST /v1/messages` or `/count_tokens` body into a provider-neutral `Ask` (see textgen).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from pulsegate.emulator.scenario import ReplyConfig
from pulsegate.emulator.textgen import IMAGE_TOKENS, Ask, estimate_tokens, mentions_tool, sample_value

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class _Counter:
    """Walks a request and counts characters/images; records the cache_control prefix if there is one."""

    def __init__(self, track_cache: bool) -> None:
        self.chars = 0
        self.images = 0
        self.track = track_cache
        self.parts: list[str] = []
        self.prefix: tuple[int, int] | None = None

    def add(self, chars: int, block: Any = None, images: int = 0) -> None:
        self.chars += chars
        self.images += images
        if self.track:
            self.parts.append(_DUMPS(block) if block is not None else "")
            if isinstance(block, dict) and block.get("cache_control"):
                digest = zlib.crc32("\x1e".join(self.parts).encode())
                self.prefix = (digest, self.tokens())

    def tokens(self) -> int:
        return max(1, estimate_tokens(self.chars) + self.images * IMAGE_TOKENS)


def _block_chars(block: Any) -> tuple[int, int]:
    """(characters, images) of one content block."""
    if isinstance(block, str):
        return len(block), 0
    if not isinstance(block, dict):
        return 0, 0
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", ""))), 0
    if kind == "image":
        return 0, 1
    if kind == "tool_use":
        return len(str(block.get("name", ""))) + len(_DUMPS(block.get("input", {}))), 0
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, list):
            chars = images = 0
            for sub in content:
                c, i = _block_chars(sub)
                chars, images = chars + c, images + i
            return chars, images
        return len(str(content)), 0
    if kind == "thinking":
        return len(str(block.get("thinking", ""))), 0
    return len(_DUMPS(block)), 0


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _invalid(message: str) -> tuple[int, str]:
    return 400, message


def parse_json(body: bytes) -> dict[str, Any] | tuple[int, str]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _invalid("There was an error parsing the body of your request: invalid JSON.")
    if not isinstance(data, dict):
        return _invalid("Request body must be a JSON object.")
    return data


def _validate_messages(data: Mapping[str, Any]) -> tuple[int, str] | None:
    if "model" not in data:
        return _invalid("model: Field required")
    if not isinstance(data["model"], str) or not data["model"]:
        return _invalid("model: Input should be a valid string")
    messages = data.get("messages")
    if messages is None:
        return _invalid("messages: Field required")
    if not isinstance(messages, list):
        return _invalid("messages: Input should be a valid list")
    if not messages:
        return _invalid("messages: at least one message is required")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return _invalid(f"messages.{i}: Input should be a valid dictionary")
        role = msg.get("role")
        if role not in ("user", "assistant"):
            if role == "system":
                return _invalid(
                    'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                    'not "system" as an input message role.'
                )
            return _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = msg.get("content")
        if not isinstance(content, str | list):
            return _invalid(f"messages.{i}.content: Input should be a valid list")
    system = data.get("system")
    if system is not None and not isinstance(system, str | list):
        return _invalid("system: Input should be a valid string or list of text blocks")
    stops = data.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        return _invalid("stop_sequences: Input should be a valid list of strings")
    return None


def _count(data: Mapping[str, Any], track_cache: bool) -> _Counter:
    counter = _Counter(track_cache)
    for tool in data.get("tools") or ():
        counter.add(len(_DUMPS(tool)), tool)
    system = data.get("system")
    if isinstance(system, str):
        counter.add(len(system), system)
    elif isinstance(system, list):
        for block in system:
            c, i = _block_chars(block)
            counter.add(c, block, i)
    for msg in data["messages"]:
        content = msg["content"]
        if isinstance(content, str):
            counter.add(len(content), content)
        else:
            for block in content:
                c, i = _block_chars(block)
                counter.add(c, block, i)
    return counter


def _choose_tool(data: Mapping[str, Any], prompt: str, config: ReplyConfig) -> tuple[str, Any] | None:
    tools = [t for t in data.get("tools") or () if isinstance(t, dict) and t.get("name")]
    if not tools:
        return None
    choice = data.get("tool_choice") or {}
    kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
    if kind == "none":
        return None
    by_name = {t["name"]: t for t in tools}
    last = data["messages"][-1]
    answered = isinstance(last.get("content"), list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last["content"]
    )
    name: str | None = None
    if kind == "tool" and choice.get("name") in by_name:
        name = choice["name"]
    elif kind == "any":
        name = mentions_tool(prompt, by_name) or tools[0]["name"]
    elif not answered:
        name = mentions_tool(prompt, by_name) or (tools[0]["name"] if config.tool_use else None)
    if name is None:
        return None
    return name, sample_value(by_name[name].get("input_schema") or {"type": "object"})


def parse_messages(body: bytes, config: ReplyConfig) -> Ask | tuple[int, str]:
    """Validate a `POST /v1/messages` body and extract what the generator needs."""
    data = parse_json(body)
    if isinstance(data, tuple):
        return data
    if "max_tokens" not in data:
        problem = _validate_messages(data)
        return problem or _invalid("max_tokens: Field required")
    problem = _validate_messages(data)
    if problem:
        return problem
    max_tokens = data["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return _invalid("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return _invalid("max_tokens: Input should be greater than or equal to 1")
    counter = _count(data, b"cache_control" in body)
    prompt = ""
    for msg in reversed(data["messages"]):
        if msg["role"] == "user":
            prompt = _text_of(msg["content"])
            break
    return Ask(
        model=data["model"],
        stream=data.get("stream") is True,
        prompt=prompt,
        input_tokens=counter.tokens(),
        max_tokens=max_tokens,
        stops=tuple(data.get("stop_sequences") or ()),
        tool=_choose_tool(data, prompt, config),
        cache_prefix=counter.prefix,
        end_user=_end_user(data.get("metadata")),
    )


def _end_user(metadata: object) -> str | None:
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    return user if isinstance(user, str) else None


def parse_count_tokens(body: bytes) -> tuple[str, int] | tuple[int, str]:
    """`POST /v1/messages/count_tokens`: (model, input_tokens) or an error (status, message)."""
    data = parse_json(body)
    if isinstance(data, tuple):
        return data
    problem = _validate_messages(data)
    if problem:
        return problem
    return data["model"], _count(data, False).tokens()
