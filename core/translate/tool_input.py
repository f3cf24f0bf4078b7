"""Tool-call arguments arrive as a JSON string (OpenAI) or JSON fragments (streams); make them an ``input`` object."""

from __future__ import annotations

import json
from typing import Any

RAW_ARGUMENTS_KEY = "_raw_arguments"
"""Key under which unparseable arguments are kept: ``input == {"_raw_arguments": "<the raw string>"}``.

The raw string goes *inside* ``input`` so the block stays a valid Anthropic ``tool_use`` (``input`` must be an object)
and nothing is lost; the caller can spot it with ``RAW_ARGUMENTS_KEY in block["input"]``.
"""


def parse_tool_arguments(raw: str | None) -> dict[str, Any]:
    """JSON-decode tool arguments; empty → ``{}``; invalid JSON or a non-object → ``{RAW_ARGUMENTS_KEY: raw}``.

    Models do emit broken JSON (truncated by ``max_tokens``, trailing prose); a crash here would lose the whole answer.
    """
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {RAW_ARGUMENTS_KEY: raw}
    if not isinstance(value, dict):
        return {RAW_ARGUMENTS_KEY: raw}
    return value
