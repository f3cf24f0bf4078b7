"""What a caller asks for: the model (:class:`ModelConfig`) and how to treat the call (:class:`CallOptions`).

Both are plain containers: construction never fails, so a malformed value is reported by the call itself as a
``validation`` error — recorded, with no key touched. Mappings with the original spec's camelCase names
(``maxTokens``, ``fallbackToOpenAI``, ``skipRateLimit``) are accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Priority:
    """The original spec's conventions; higher is served first."""

    USER_FACING_HIGH = 6
    USER_FACING = 5
    ADMIN_HIGH = 4
    ADMIN = 3
    BACKGROUND_HIGH = 2
    BACKGROUND = 1
    #: added to a request's priority when it falls back, so the retry of an already-late call goes first
    FALLBACK_BOOST = 2
    MIN = 0
    MAX = 10


#: Priority classes the rollups count calls by (the original spec's conventions): (name, lowest priority in it).
PRIORITY_CLASSES: tuple[tuple[str, int], ...] = (
    ("user_facing", Priority.USER_FACING),
    ("admin", Priority.ADMIN),
    ("background", Priority.MIN),
)


def priority_class(priority: int | None) -> str:
    """``user_facing`` (5 and up, fallback boosts included), ``admin`` (3–4) or ``background`` (0–2, or unknown)."""
    for name, lowest in PRIORITY_CLASSES:
        if priority is not None and priority >= lowest:
            return name
    return "background"


@dataclass(frozen=True, slots=True)
class ModelConfig:
    model: str
    provider: str = "anthropic"
    max_tokens: int = 1024
    temperature: float | None = None
    stop_sequences: tuple[str, ...] | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CallOptions:
    fallback_to_openai: bool = False
    fallback_to_anthropic: bool = False
    priority: int = Priority.USER_FACING
    skip_rate_limit: bool = False
    user_id: str | None = None
    feature: str | None = None
    timeout_s: float = 60.0  # the whole call; for a stream, until its first delta
    queue_timeout_s: float | None = None
    stream_idle_timeout_s: float = 60.0  # a stream: the longest gap between two deltas
    stream_total_timeout_s: float | None = None  # a stream: from the call's start to its last delta (None: no bound)
    extra: dict[str, Any] = field(default_factory=dict)


CONFIG_ALIASES = {"maxTokens": "max_tokens", "stopSequences": "stop_sequences", "toolChoice": "tool_choice"}
OPTION_ALIASES = {
    "fallbackToOpenAI": "fallback_to_openai",
    "fallbackToAnthropic": "fallback_to_anthropic",
    "skipRateLimit": "skip_rate_limit",
    "userId": "user_id",
    "timeoutS": "timeout_s",
    "queueTimeoutS": "queue_timeout_s",
    "streamIdleTimeoutS": "stream_idle_timeout_s",
    "streamTotalTimeoutS": "stream_total_timeout_s",
}
