"""OpenAI ``finish_reason`` → Anthropic ``stop_reason`` (docs/provider-wire.md §4), in one table."""

from __future__ import annotations

from types import MappingProxyType

OPENAI_TO_ANTHROPIC_STOP_REASON = MappingProxyType(
    {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "function_call": "tool_use",
        "content_filter": "refusal",
    }
)


def openai_finish_to_stop_reason(finish_reason: str) -> str:
    """Map a non-null ``finish_reason``; an unknown one is kept verbatim so it shows up in metrics, not hidden."""
    return OPENAI_TO_ANTHROPIC_STOP_REASON.get(finish_reason, finish_reason)
