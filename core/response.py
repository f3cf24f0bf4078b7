"""What a successful call returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.translate.usage import Usage


@dataclass(frozen=True, slots=True)
class AIResponse:
    text: str
    provider: str  # who answered: differs from the config's provider when the call fell back
    model: str
    key_label: str
    usage: Usage
    stop_reason: str  # Anthropic vocabulary whichever provider answered
    attempts: int  # attempts made, across keys and providers
    latency_ms: float  # the whole call: queue wait, retries and fallback included
    cost_usd: float | None  # None when the model is not in the price table
    call_id: str
    fell_back: bool = False
    fallback_from: str | None = None
    content: list[dict[str, Any]] = field(default_factory=list)  # Anthropic-style blocks, tool_use included
    request_id: str | None = None
    queue_wait_ms: float = 0.0
    ttft_ms: float | None = None
