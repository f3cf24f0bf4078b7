"""Anthropic ⇄ OpenAI translation as pure functions on plain dicts (no I/O, no SDK imports).

Requests go Anthropic → OpenAI (fallback); answers come back in Anthropic vocabulary as :class:`NormalizedResponse`,
whichever provider served them. Rules: ``docs/provider-wire.md`` §4 (translation).
"""

from pulsegate.core.translate.model_map import (
    DEFAULT_ANTHROPIC_MODEL,
    DEFAULT_OPENAI_MODEL,
    DEFAULT_TO_ANTHROPIC,
    DEFAULT_TO_OPENAI,
    ModelMap,
)
from pulsegate.core.translate.requests import (
    MAX_STOP_SEQUENCES,
    TOOL_ERROR_PREFIX,
    anthropic_to_openai_request,
    system_role_for,
)
from pulsegate.core.translate.responses import anthropic_message_to_normalized, openai_response_to_normalized
from pulsegate.core.translate.result import IncompleteResponseError, NormalizedResponse, StreamErrorEvent
from pulsegate.core.translate.stop_reasons import OPENAI_TO_ANTHROPIC_STOP_REASON, openai_finish_to_stop_reason
from pulsegate.core.translate.streams import AnthropicStreamAccumulator, OpenAIStreamAccumulator
from pulsegate.core.translate.tool_input import RAW_ARGUMENTS_KEY, parse_tool_arguments
from pulsegate.core.translate.usage import Usage, usage_from_anthropic, usage_from_openai

__all__ = [
    "DEFAULT_ANTHROPIC_MODEL",
    "DEFAULT_OPENAI_MODEL",
    "DEFAULT_TO_ANTHROPIC",
    "DEFAULT_TO_OPENAI",
    "MAX_STOP_SEQUENCES",
    "OPENAI_TO_ANTHROPIC_STOP_REASON",
    "RAW_ARGUMENTS_KEY",
    "TOOL_ERROR_PREFIX",
    "AnthropicStreamAccumulator",
    "IncompleteResponseError",
    "ModelMap",
    "NormalizedResponse",
    "OpenAIStreamAccumulator",
    "StreamErrorEvent",
    "Usage",
    "anthropic_message_to_normalized",
    "anthropic_to_openai_request",
    "openai_finish_to_stop_reason",
    "openai_response_to_normalized",
    "parse_tool_arguments",
    "system_role_for",
    "usage_from_anthropic",
    "usage_from_openai",
]
