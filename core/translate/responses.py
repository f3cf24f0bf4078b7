"""Completed answers (OpenAI ``ChatCompletion`` or Anthropic ``Message``, as dicts) → :class:`NormalizedResponse`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulsegate.core.translate.result import IncompleteResponseError, NormalizedResponse
from pulsegate.core.translate.stop_reasons import openai_finish_to_stop_reason
from pulsegate.core.translate.tool_input import parse_tool_arguments
from pulsegate.core.translate.usage import usage_from_anthropic, usage_from_openai

LEGACY_FUNCTION_CALL_ID = "function_call"
"""Id given to the ``tool_use`` made from a legacy ``message.function_call`` (which has no id of its own)."""


def openai_tool_use_block(tool_id: str | None, name: str | None, arguments: str | None) -> dict[str, Any]:
    """One OpenAI function call → an Anthropic ``tool_use`` block (``input`` parsed; see ``RAW_ARGUMENTS_KEY``)."""
    return {"type": "tool_use", "id": tool_id or "", "name": name or "", "input": parse_tool_arguments(arguments)}


def openai_response_to_normalized(
    completion: Mapping[str, Any], *, request_id: str | None = None
) -> NormalizedResponse:
    """Translate ``completion.model_dump()`` (first choice only: Pulsegate never asks for ``n > 1``).

    A refusal (``message.refusal``) becomes the text and ``stop_reason="refusal"``. No choice or a null
    ``finish_reason`` raises :class:`IncompleteResponseError`.
    """
    choices = completion.get("choices") or []
    if not choices:
        raise IncompleteResponseError("OpenAI completion has no choices")
    choice = choices[0]
    message: Mapping[str, Any] = choice.get("message") or {}
    text_parts: list[str] = []
    content: list[dict[str, Any]] = []
    message_content = message.get("content")
    if isinstance(message_content, str):
        text_parts.append(message_content)
    elif isinstance(message_content, list):  # some OpenAI-compatible servers answer with text parts
        text_parts.extend(part.get("text") or "" for part in message_content if isinstance(part, Mapping))
    refusal = message.get("refusal")
    if refusal:
        text_parts.append(refusal)
    text = "".join(text_parts)
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(openai_tool_use_block(call.get("id"), function.get("name"), function.get("arguments")))
    legacy_call = message.get("function_call")
    if legacy_call:
        content.append(
            openai_tool_use_block(LEGACY_FUNCTION_CALL_ID, legacy_call.get("name"), legacy_call.get("arguments"))
        )

    finish_reason = choice.get("finish_reason")
    if not finish_reason:
        raise IncompleteResponseError("OpenAI completion has no finish_reason", partial_text=text)
    stop_reason = "refusal" if refusal else openai_finish_to_stop_reason(finish_reason)
    return NormalizedResponse(
        text=text,
        content=content,
        stop_reason=stop_reason,
        model=completion.get("model") or "",
        usage=usage_from_openai(completion.get("usage")),
        request_id=request_id,
        response_id=completion.get("id"),
    )


def anthropic_content_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """Keep text / tool_use to their essential keys (``model_dump`` adds ``citations: None`` etc.); others verbatim."""
    block_type = block.get("type")
    if block_type == "text":
        return {"type": "text", "text": block.get("text") or ""}
    if block_type == "tool_use":
        return {"type": "tool_use", "id": block.get("id"), "name": block.get("name"), "input": block.get("input") or {}}
    return dict(block)


def anthropic_message_to_normalized(message: Mapping[str, Any], *, request_id: str | None = None) -> NormalizedResponse:
    """Translate ``message.model_dump()``; a null ``stop_reason`` (unfinished) raises ``IncompleteResponseError``."""
    content = [anthropic_content_block(block) for block in message.get("content") or []]
    text = "".join(block["text"] for block in content if block.get("type") == "text")
    stop_reason = message.get("stop_reason")
    if not stop_reason:
        raise IncompleteResponseError("Anthropic message has no stop_reason", partial_text=text)
    return NormalizedResponse(
        text=text,
        content=content,
        stop_reason=stop_reason,
        model=message.get("model") or "",
        usage=usage_from_anthropic(message.get("usage")),
        request_id=request_id,
        response_id=message.get("id"),
        stop_sequence=message.get("stop_sequence"),
    )
