"""OpenAI Chat Completions requests: validation (400s in OpenAI's shape), token estimates, tool choice.

Turns a `POST /v1/chat/completions` body into a provider-neutral `Ask` (see textgen).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulsegate.emulator.openai_wire import error_body
from pulsegate.emulator.scenario import ReplyConfig
from pulsegate.emulator.textgen import IMAGE_TOKENS, Ask, estimate_tokens, mentions_tool, sample_value

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _content_chars(content: Any) -> tuple[int, int]:
    if isinstance(content, str):
        return len(content), 0
    chars = images = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                chars += len(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                images += 1
            else:
                chars += len(_DUMPS(part))
    return chars, images


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _bad(message: str, param: str | None = None, code: str | None = None) -> tuple[int, bytes]:
    return 400, error_body(400, message, param=param, code=code)


def _choose_tool(data: Mapping[str, Any], prompt: str, config: ReplyConfig) -> tuple[str, Any] | None:
    tools = [
        t["function"]
        for t in data.get("tools") or ()
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and t["function"].get("name")
    ]
    if not tools:
        return None
    choice = data.get("tool_choice", "auto")
    if choice == "none":
        return None
    by_name = {t["name"]: t for t in tools}
    answered = data["messages"][-1].get("role") == "tool"
    name: str | None = None
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        name = wanted if wanted in by_name else None
    elif choice == "required":
        name = mentions_tool(prompt, by_name) or tools[0]["name"]
    elif not answered:
        name = mentions_tool(prompt, by_name) or (tools[0]["name"] if config.tool_use else None)
    if name is None:
        return None
    return name, sample_value(by_name[name].get("parameters") or {"type": "object"})


def parse_chat(
    body: bytes, config: ReplyConfig, reasoning_prefixes: tuple[str, ...], context_window: int
) -> Ask | tuple[int, bytes]:
    """Validate a `POST /v1/chat/completions` body (400s in OpenAI's shape) and extract what to generate."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _bad(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
            "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        )
    if not isinstance(data, dict):
        return _bad("Invalid type for body: expected an object.")
    model = data.get("model")
    if not model or not isinstance(model, str):
        return _bad("you must provide a model parameter")
    messages = data.get("messages")
    if messages is None:
        return _bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        return _bad("Invalid type for 'messages': expected an array.", "messages", "invalid_type")
    if not messages:
        return _bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    chars = images = 0
    prompt = ""
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            return _bad(f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]", "invalid_type")
        role = msg.get("role")
        if role not in ROLES:
            return _bad(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', "
                "'tool', and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        c, im = _content_chars(msg.get("content"))
        chars, images = chars + c, images + im
        for call in msg.get("tool_calls") or ():
            chars += len(_DUMPS(call))
        if role == "user":
            prompt = _text_of(msg.get("content"))
    for tool in data.get("tools") or ():
        chars += len(_DUMPS(tool))
    uses_legacy = "max_tokens" in data and data["max_tokens"] is not None
    if uses_legacy and model.startswith(tuple(reasoning_prefixes)):
        return _bad(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' "
            "instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    param = "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = data.get(param)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        return _bad(
            f"Invalid '{param}': integer below minimum value. Expected a value >= 1, but got {max_tokens!r} instead.",
            param,
            "integer_below_min_value",
        )
    input_tokens = max(1, estimate_tokens(chars) + images * IMAGE_TOKENS)
    if input_tokens + (max_tokens or 0) > context_window:
        return _bad(
            f"This model's maximum context length is {context_window} tokens. However, your messages resulted in "
            f"{input_tokens + (max_tokens or 0)} tokens. Please reduce the length of the messages.",
            "messages",
            "context_length_exceeded",
        )
    stop = data.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in stop or () if isinstance(s, str))
    options = data.get("stream_options")
    return Ask(
        model=model,
        stream=data.get("stream") is True,
        prompt=prompt,
        input_tokens=input_tokens,
        max_tokens=max_tokens,
        stops=stops,
        tool=_choose_tool(data, prompt, config),
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        end_user=data["user"] if isinstance(data.get("user"), str) else None,
    )
