"""What a successful call returns, and how it is built from the call's last attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pulsegate.core.translate.usage import Usage

if TYPE_CHECKING:
    from pulsegate.core.call.runner import Call
    from pulsegate.core.translate.result import NormalizedResponse


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

    @classmethod
    def of_call(
        cls, call: Call, result: NormalizedResponse, *, cost: float | None, ttft_ms: float | None, now: float
    ) -> AIResponse:
        """The answer of ``call``, given by its answered attempt and settled at ``now`` (monotonic seconds)."""
        ctx, lease = call.ctx, call.lease
        assert lease is not None, "a call answers through its attempt"
        return cls(
            text=result.text,
            provider=lease.runtime.provider.value,
            model=result.model or lease.prepared.model,
            key_label=lease.key.label,
            usage=result.usage,
            stop_reason=result.stop_reason,
            attempts=ctx.attempts,
            latency_ms=(now - ctx.started) * 1000.0,
            cost_usd=cost,
            call_id=str(ctx.call_id),
            fell_back=lease.fell_back_from is not None,
            fallback_from=lease.fell_back_from,
            content=result.content,
            request_id=result.request_id,
            queue_wait_ms=ctx.queue_wait_s * 1000.0,
            ttft_ms=ttft_ms,
        )
