"""Anthropic Messages request → keyword arguments for ``openai.chat.completions.create`` (docs/provider-wire.md §4).

Pure and dict-based: the caller passes plain dicts (``model_dump()`` output or raw JSON). Anything that cannot be
expressed for OpenAI raises :class:`pulsegate.core.errors.RequestValidationError` naming the offending field, e.g.
``messages[2].content[0].source.type``, so the failure is reported before any network I/O.

Choices where the wire spec leaves room:

- tool ids (``toolu_…``) are passed through unchanged as OpenAI ``tool_call_id`` values;
- images inside a ``tool_result`` cannot go into a ``tool`` message, so they move to the ``user`` message that follows
  the tool messages (after a text part naming the tool call); the tool message gets a note saying so;
- a ``tool_use`` whose id is not answered by a ``tool_result`` before the next non-tool message (or the end) raises,
  as does a ``tool_result`` that answers no open ``tool_use`` — OpenAI would answer both with a 400;
- ``thinking`` / ``redacted_thinking`` blocks are dropped; an assistant turn left empty by that is skipped;
- ``temperature`` must be in Anthropic's 0–1 range (a subset of OpenAI's 0–2) and is passed through unchanged.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulsegate.core.errors import RequestValidationError

PROVIDER = "openai"
MAX_STOP_SEQUENCES = 4
TOOL_ERROR_PREFIX = "Error: "
SUPPORTED_IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
DROPPED_BLOCK_TYPES = frozenset({"thinking", "redacted_thinking"})

_DEVELOPER_ROLE_MODELS = re.compile(r"^(?:ft:)?(?:o\d|gpt-5)", re.IGNORECASE)


def _invalid(field: str, problem: str) -> RequestValidationError:
    return RequestValidationError(f"{field}: {problem}", provider=PROVIDER)


def system_role_for(model: str) -> str:
    """``developer`` for o-series (``o1``, ``o3``, ``o4-mini``, …) and GPT-5 models, which want it; else ``system``."""
    return "developer" if _DEVELOPER_ROLE_MODELS.match(model) else "system"


def anthropic_to_openai_request(
    *,
    model: str,
    system: str | list[dict[str, Any]] | None,
    messages: list[dict[str, Any]],
    max_tokens: int,
    temperature: float | None = None,
    stop_sequences: list[str] | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: dict[str, Any] | None = None,
    metadata_user_id: str | None = None,
) -> dict[str, Any]:
    """Translate one Anthropic-form request; the result is ready for ``chat.completions.create(**kwargs)``.

    ``stream`` / ``stream_options`` are left to the caller, who knows whether it streams.
    """
    if not isinstance(model, str) or not model:
        raise _invalid("model", "must be a non-empty string (the OpenAI model id)")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("max_tokens", f"must be an integer >= 1, got {max_tokens!r}")

    out_messages: list[dict[str, Any]] = []
    system_text = _system_text(system)
    if system_text:
        out_messages.append({"role": system_role_for(model), "content": system_text})
    out_messages.extend(_translate_messages(messages))

    kwargs: dict[str, Any] = {"model": model, "messages": out_messages, "max_completion_tokens": max_tokens}
    if temperature is not None:
        kwargs["temperature"] = _temperature(temperature)
    if stop_sequences:
        kwargs["stop"] = _stop(stop_sequences)
    if metadata_user_id is not None:
        if not isinstance(metadata_user_id, str):
            raise _invalid("metadata.user_id", "must be a string")
        kwargs["user"] = metadata_user_id
    if tools:
        kwargs["tools"] = _tools(tools)
    if tool_choice is not None:
        tool_names = {tool["function"]["name"] for tool in kwargs.get("tools", [])}
        choice, parallel = _tool_choice(tool_choice, tool_names=tool_names)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel is not None:
            kwargs["parallel_tool_calls"] = parallel
    return kwargs


# --- scalar fields -----------------------------------------------------------------------------------------------


def _temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        raise _invalid("temperature", f"must be a number from 0 to 1, got {temperature!r}")
    return temperature


def _stop(stop_sequences: Sequence[str]) -> list[str]:
    if isinstance(stop_sequences, str) or not isinstance(stop_sequences, Sequence):
        raise _invalid("stop_sequences", "must be a list of strings")
    if len(stop_sequences) > MAX_STOP_SEQUENCES:
        raise _invalid(
            "stop_sequences", f"OpenAI accepts at most {MAX_STOP_SEQUENCES} stop sequences, got {len(stop_sequences)}"
        )
    for i, sequence in enumerate(stop_sequences):
        if not isinstance(sequence, str):
            raise _invalid(f"stop_sequences[{i}]", "must be a string")
    return list(stop_sequences)


def _system_text(system: str | Sequence[Mapping[str, Any]] | None) -> str:
    """System prompt as one string: text blocks joined with a blank line; ``cache_control`` has no OpenAI form."""
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, Sequence):
        raise _invalid("system", "must be a string or a list of text blocks")
    texts: list[str] = []
    for i, block in enumerate(system):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise _invalid(f"system[{i}].type", "system blocks must be text blocks")
        texts.append(_text(block, f"system[{i}]"))
    return "\n\n".join(texts)


# --- messages -----------------------------------------------------------------------------------------------------


class _OpenToolUses:
    """``tool_use`` ids waiting for their ``tool_result``; OpenAI needs every one answered right after the call."""

    def __init__(self) -> None:
        self._where: dict[str, str] = {}

    def add(self, tool_id: str, where: str) -> None:
        self._where[tool_id] = where

    def answer(self, tool_id: object, where: str) -> None:
        if not isinstance(tool_id, str) or tool_id not in self._where:
            raise _invalid(
                f"{where}.tool_use_id",
                f"tool_result for {tool_id!r} has no matching tool_use in the preceding assistant turn",
            )
        del self._where[tool_id]

    def ensure_all_answered(self) -> None:
        if self._where:
            tool_id, where = next(iter(self._where.items()))
            raise _invalid(where, f"tool_use {tool_id!r} has no tool_result in the following user turn")


def _translate_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(messages, str) or not isinstance(messages, Sequence) or not messages:
        raise _invalid("messages", "must be a non-empty list of turns")
    out: list[dict[str, Any]] = []
    open_tool_uses = _OpenToolUses()
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise _invalid(where, "each turn must be an object with 'role' and 'content'")
        role = message.get("role")
        if role == "assistant":
            open_tool_uses.ensure_all_answered()
            translated = _assistant_message(message.get("content"), where, open_tool_uses)
            if translated is not None:
                out.append(translated)
        elif role == "user":
            out.extend(_user_messages(message.get("content"), where, open_tool_uses))
        else:
            raise _invalid(f"{where}.role", f"must be 'user' or 'assistant', got {role!r}")
    open_tool_uses.ensure_all_answered()
    if not out:
        raise _invalid("messages", "no content left to send (only thinking blocks?)")
    return out


def _blocks(content: object, where: str) -> list[Mapping[str, Any]]:
    if isinstance(content, str) or not isinstance(content, Sequence):
        raise _invalid(f"{where}.content", "must be a string or a list of content blocks")
    for j, block in enumerate(content):
        if not isinstance(block, Mapping):
            raise _invalid(f"{where}.content[{j}]", "each content block must be an object with a 'type'")
    return list(content)


def _collapse(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A lone text part becomes plain string content (the common, most portable form)."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _unsupported_block(block: Mapping[str, Any], where: str, role: str) -> RequestValidationError:
    return _invalid(f"{where}.type", f"{block.get('type')!r} blocks cannot be sent to OpenAI in a {role} turn")


def _assistant_message(content: object, where: str, open_tool_uses: _OpenToolUses) -> dict[str, Any] | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    parts: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        block_where = f"{where}.content[{j}]"
        block_type = block.get("type")
        if block_type == "text":
            parts.append({"type": "text", "text": _text(block, block_where)})
        elif block_type == "tool_use":
            call = _tool_call(block, block_where)
            open_tool_uses.add(call["id"], block_where)
            tool_calls.append(call)
        elif block_type not in DROPPED_BLOCK_TYPES:
            raise _unsupported_block(block, block_where, "assistant")
    if not parts and not tool_calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": _collapse(parts) if parts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _tool_call(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    tool_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(tool_id, str) or not tool_id:
        raise _invalid(f"{where}.id", "tool_use needs a non-empty string id")
    if not isinstance(name, str) or not name:
        raise _invalid(f"{where}.name", "tool_use needs a non-empty string name")
    if not isinstance(tool_input, Mapping):
        raise _invalid(f"{where}.input", "tool_use input must be an object")
    try:
        arguments = json.dumps(tool_input, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise _invalid(f"{where}.input", f"is not JSON-serialisable ({exc})") from None
    return {"id": tool_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _user_messages(content: object, where: str, open_tool_uses: _OpenToolUses) -> list[dict[str, Any]]:
    """One user turn → its ``tool`` messages first (OpenAI wants them right after the call), then the user message."""
    if isinstance(content, str):
        open_tool_uses.ensure_all_answered()
        return [{"role": "user", "content": content}]
    blocks = _blocks(content, where)
    if not blocks:
        raise _invalid(f"{where}.content", "a user turn must not be empty")
    tool_messages: list[dict[str, Any]] = []
    moved_images: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        block_where = f"{where}.content[{j}]"
        block_type = block.get("type")
        if block_type == "text":
            parts.append({"type": "text", "text": _text(block, block_where)})
        elif block_type == "image":
            parts.append(_image_part(block, block_where))
        elif block_type == "tool_result":
            open_tool_uses.answer(block.get("tool_use_id"), block_where)
            tool_message, images = _tool_message(block, block_where)
            tool_messages.append(tool_message)
            if images:
                note = {"type": "text", "text": f"Image(s) returned by tool call {block['tool_use_id']}:"}
                moved_images.extend([note, *images])
        elif block_type not in DROPPED_BLOCK_TYPES:
            raise _unsupported_block(block, block_where, "user")
    user_parts = moved_images + parts
    if not user_parts:
        return tool_messages
    open_tool_uses.ensure_all_answered()
    return [*tool_messages, {"role": "user", "content": _collapse(user_parts)}]


def _tool_message(block: Mapping[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``tool_result`` → ``tool`` message (text only) and the image parts that must travel in a user message."""
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif content is not None:
        for k, inner in enumerate(_blocks(content, where)):
            inner_where = f"{where}.content[{k}]"
            if inner.get("type") == "text":
                texts.append(_text(inner, inner_where))
            elif inner.get("type") == "image":
                images.append(_image_part(inner, inner_where))
            else:
                raise _invalid(f"{inner_where}.type", f"{inner.get('type')!r} blocks in a tool_result cannot be sent")
    text = "\n\n".join(texts)
    if images:
        note = f"[{len(images)} image(s) from this result are attached to the next user message]"
        text = f"{text}\n\n{note}" if text else note
    if block.get("is_error") is True:
        text = TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, images


def _text(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _invalid(f"{where}.text", "must be a string")
    return text


def _image_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise _invalid(f"{where}.source", "must be an object")
    source_type = source.get("type")
    if source_type == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if media_type not in SUPPORTED_IMAGE_MEDIA_TYPES:
            raise _invalid(f"{where}.source.media_type", f"unsupported image type {media_type!r}")
        if not isinstance(data, str) or not data:
            raise _invalid(f"{where}.source.data", "must be a non-empty base64 string")
        url = f"data:{media_type};base64,{data}"
    elif source_type == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            raise _invalid(f"{where}.source.url", "must be a non-empty string")
    else:
        raise _invalid(f"{where}.source.type", f"unsupported image source {source_type!r}; expected 'base64' or 'url'")
    return {"type": "image_url", "image_url": {"url": url}}


# --- tools --------------------------------------------------------------------------------------------------------


def _tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise _invalid(where, "must be an object")
        if tool.get("type") not in (None, "custom"):
            raise _invalid(f"{where}.type", f"Anthropic server tool {tool.get('type')!r} has no OpenAI equivalent")
        name, description, schema = tool.get("name"), tool.get("description"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _invalid(f"{where}.name", "must be a non-empty string")
        if not isinstance(schema, Mapping):
            raise _invalid(f"{where}.input_schema", "must be a JSON Schema object")
        function: dict[str, Any] = {"name": name}
        if description is not None:
            if not isinstance(description, str):
                raise _invalid(f"{where}.description", "must be a string")
            function["description"] = description
        function["parameters"] = copy.deepcopy(dict(schema))
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(
    tool_choice: Mapping[str, Any], *, tool_names: set[str]
) -> tuple[str | dict[str, Any] | None, bool | None]:
    """Anthropic ``tool_choice`` → (OpenAI ``tool_choice``, ``parallel_tool_calls``); ``None`` means "leave unset"."""
    if not isinstance(tool_choice, Mapping):
        raise _invalid("tool_choice", "must be an object with a 'type'")
    choice_type = tool_choice.get("type")
    choice: str | dict[str, Any]
    if choice_type == "auto":
        choice = "auto"
    elif choice_type == "any":
        choice = "required"
    elif choice_type == "none":
        choice = "none"
    elif choice_type == "tool":
        name = tool_choice.get("name")
        if not isinstance(name, str) or name not in tool_names:
            raise _invalid("tool_choice.name", f"{name!r} is not one of the request's tools")
        choice = {"type": "function", "function": {"name": name}}
    else:
        raise _invalid("tool_choice.type", f"must be 'auto', 'any', 'tool' or 'none', got {choice_type!r}")
    if not tool_names:
        # OpenAI rejects tool_choice / parallel_tool_calls without tools; "auto" and "none" mean the same as omitting.
        if choice_type == "any":
            raise _invalid("tool_choice.type", "'any' needs at least one tool in 'tools'")
        return None, None
    parallel = False if tool_choice.get("disable_parallel_tool_use") is True else None
    return choice, parallel
