"""Reject a malformed call before any key is touched, naming the field that is wrong.

Runs on every call, so it checks shapes cheaply and leaves content semantics to the provider.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pulsegate.core.errors import RequestValidationError
from pulsegate.core.provider import Provider
from pulsegate.core.request import CONFIG_ALIASES, OPTION_ALIASES, CallOptions, ModelConfig, Priority

ROLES = frozenset({"user", "assistant"})
BLOCK_TYPES = frozenset(
    {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "search_result"}
)
PROVIDERS = frozenset(p.value for p in Provider)
MAX_MODEL_NAME = 128
MAX_USER_ID = 128
MAX_FEATURE = 64


@dataclass(frozen=True, slots=True)
class ValidCall:
    config: ModelConfig
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None
    options: CallOptions


def _fail(field: str, problem: str, provider: str | None = None) -> RequestValidationError:
    return RequestValidationError(f"invalid request: {field}: {problem}", provider=provider)


def _from_mapping(cls: type, value: object, aliases: Mapping[str, str], name: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise _fail(name, f"expected {cls.__name__} or a mapping, got {type(value).__name__}")
    known = {f.name for f in fields(cls)}
    data = {aliases.get(k, k): v for k, v in value.items()}
    unknown = sorted(set(data) - known)
    if unknown:
        raise _fail(name, f"unknown field(s) {unknown}; expected some of {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise _fail(name, str(exc)) from None


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean_text(value: object, limit: int) -> bool:
    """A name stored in a column (model, user id, feature): 1–``limit`` characters, no control characters, valid
    UTF-8 — a NUL or a lone surrogate cannot be stored on PostgreSQL and would cost the whole batch its rows."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        return False
    if _CONTROL_CHARACTER.search(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate_config(raw: object) -> ModelConfig:
    config: ModelConfig = _from_mapping(ModelConfig, raw, CONFIG_ALIASES, "config")
    provider = config.provider
    if not isinstance(provider, str) or provider not in PROVIDERS:
        raise _fail("config.provider", f"expected one of {sorted(PROVIDERS)}, got {provider!r}")
    if not _clean_text(config.model, MAX_MODEL_NAME):
        problem = f"expected a model name of 1–{MAX_MODEL_NAME} characters without control characters"
        raise _fail("config.model", problem, provider)
    if isinstance(config.max_tokens, bool) or not isinstance(config.max_tokens, int) or config.max_tokens < 1:
        raise _fail("config.max_tokens", f"expected a positive integer, got {config.max_tokens!r}", provider)
    top = 1.0 if provider == Provider.ANTHROPIC else 2.0
    if config.temperature is not None and not (_is_number(config.temperature) and 0 <= config.temperature <= top):
        raise _fail("config.temperature", f"expected a number from 0 to {top:g}, got {config.temperature!r}", provider)
    if config.stop_sequences is not None and (
        isinstance(config.stop_sequences, str)
        or not isinstance(config.stop_sequences, Sequence)
        or not all(isinstance(s, str) and s for s in config.stop_sequences)
    ):
        raise _fail("config.stop_sequences", "expected a list of non-empty strings", provider)
    if config.tools is not None:
        if not isinstance(config.tools, Sequence) or isinstance(config.tools, str):
            raise _fail("config.tools", "expected a list of tool definitions", provider)
        for index, tool in enumerate(config.tools):
            if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str) or not tool.get("name"):
                raise _fail(f"config.tools[{index}]", "expected a mapping with a non-empty 'name'", provider)
    if config.tool_choice is not None and not (
        isinstance(config.tool_choice, Mapping) and config.tool_choice.get("type") in ("auto", "any", "tool", "none")
    ):
        raise _fail("config.tool_choice", "expected {'type': 'auto' | 'any' | 'tool' | 'none', …}", provider)
    return config


def validate_options(raw: object | None) -> CallOptions:
    if raw is None:
        return CallOptions()
    options: CallOptions = _from_mapping(CallOptions, raw, OPTION_ALIASES, "options")
    for name in ("fallback_to_openai", "fallback_to_anthropic", "skip_rate_limit"):
        if not isinstance(getattr(options, name), bool):
            raise _fail(f"options.{name}", f"expected true or false, got {getattr(options, name)!r}")
    priority = options.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not Priority.MIN <= priority <= Priority.MAX:
        raise _fail("options.priority", f"expected an integer from {Priority.MIN} to {Priority.MAX}, got {priority!r}")
    if not _is_number(options.timeout_s) or options.timeout_s <= 0:
        raise _fail("options.timeout_s", f"expected a positive number of seconds, got {options.timeout_s!r}")
    if options.queue_timeout_s is not None and (not _is_number(options.queue_timeout_s) or options.queue_timeout_s < 0):
        raise _fail(
            "options.queue_timeout_s", f"expected a non-negative number of seconds, got {options.queue_timeout_s!r}"
        )
    for name in ("stream_idle_timeout_s", "stream_total_timeout_s"):
        value = getattr(options, name)
        if (value is not None or name == "stream_idle_timeout_s") and (not _is_number(value) or value <= 0):
            raise _fail(f"options.{name}", f"expected a positive number of seconds, got {value!r}")
    for name, limit in (("user_id", MAX_USER_ID), ("feature", MAX_FEATURE)):
        value = getattr(options, name)
        if value is not None and not _clean_text(value, limit):
            raise _fail(f"options.{name}", f"expected a string of 1–{limit} characters without control characters")
    return options


def _validate_block(block: object, where: str, provider: str) -> None:
    if not isinstance(block, Mapping):
        raise _fail(where, f"expected a content block mapping, got {type(block).__name__}", provider)
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in BLOCK_TYPES:
        raise _fail(f"{where}.type", f"expected one of {sorted(BLOCK_TYPES)}, got {kind!r}", provider)
    if kind == "text" and (not isinstance(block.get("text"), str) or not block["text"]):
        raise _fail(f"{where}.text", "expected non-empty text", provider)


def validate_messages(raw: object, provider: str) -> list[dict[str, Any]]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
        raise _fail("messages", "expected a non-empty list of {'role', 'content'} turns", provider)
    messages: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise _fail(where, f"expected a mapping with 'role' and 'content', got {type(message).__name__}", provider)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            hint = " (put system text in system_prompt)" if role == "system" else ""
            raise _fail(f"{where}.role", f"expected 'user' or 'assistant', got {role!r}{hint}", provider)
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip():
                raise _fail(f"{where}.content", "expected non-empty text", provider)
        elif isinstance(content, Sequence) and not isinstance(content, bytes) and content:
            for block_index, block in enumerate(content):
                _validate_block(block, f"{where}.content[{block_index}]", provider)
        else:
            raise _fail(
                f"{where}.content", "expected a non-empty string or a non-empty list of content blocks", provider
            )
        messages.append(message if isinstance(message, dict) else dict(message))
    return messages


def validate_system(raw: object, provider: str) -> str | list[dict[str, Any]] | None:
    if raw is None or isinstance(raw, str):
        return raw or None
    if isinstance(raw, Sequence) and not isinstance(raw, bytes):
        for index, block in enumerate(raw):
            if not isinstance(block, Mapping) or block.get("type") != "text" or not isinstance(block.get("text"), str):
                raise _fail(f"system_prompt[{index}]", "expected a text block {'type': 'text', 'text': …}", provider)
        return [dict(b) for b in raw]
    raise _fail("system_prompt", f"expected a string or a list of text blocks, got {type(raw).__name__}", provider)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A call refused as malformed, with what did validate — what its one ``validation`` row can say."""

    error: RequestValidationError
    config: ModelConfig | None  # None: the config itself is what is wrong
    options: CallOptions  # the defaults when the options are what is wrong


def screen_call(
    config: object, messages: object, system_prompt: object, options: object | None
) -> ValidCall | Rejected:
    """The call's inputs, each checked once: a :class:`ValidCall`, or :class:`Rejected` naming the first bad field
    (config, messages, system prompt, options — in that order)."""
    try:
        valid_options: CallOptions | None = validate_options(options)
        options_error = None
    except RequestValidationError as error:
        valid_options, options_error = None, error
    defaults = valid_options or CallOptions()
    try:
        model_config = validate_config(config)
    except RequestValidationError as error:
        return Rejected(error, None, defaults)
    try:
        valid_messages = validate_messages(messages, model_config.provider)
        system = validate_system(system_prompt, model_config.provider)
    except RequestValidationError as error:
        return Rejected(error, model_config, defaults)
    if valid_options is None:
        assert options_error is not None
        return Rejected(options_error, model_config, defaults)
    return ValidCall(model_config, valid_messages, system, valid_options)


def validate_call(config: object, messages: object, system_prompt: object, options: object | None) -> ValidCall:
    """The call's inputs, checked; raises :class:`RequestValidationError` naming the first bad field."""
    checked = screen_call(config, messages, system_prompt, options)
    if isinstance(checked, Rejected):
        raise checked.error
    return checked
