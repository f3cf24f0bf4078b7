"""What one call carries from its start to its last row (:class:`CallContext`), and what one attempt in flight holds
until it is settled (:class:`Lease`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.breaker import Permit
from pulsegate.core.limits.base import Demand
from pulsegate.core.limits.own_use import Sent
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest
from pulsegate.core.recording import AttemptRecord
from pulsegate.core.request import CallOptions, ModelConfig

T = TypeVar("T")

#: How one attempt is sent: ``(runtime, key, prepared request, SDK timeout) -> result`` — the adapter's
#: ``complete`` by default, a stream's opening, or a probe's free auth check.
Send = Callable[[ProviderRuntime, ApiKey, PreparedRequest, float], Awaitable[T]]


@dataclass(slots=True)
class CallContext:
    call_id: uuid.UUID
    config: ModelConfig
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None
    options: CallOptions
    started: float
    started_at: datetime
    deadline: float
    source: str = "live"
    streamed: bool = False
    app: str | None = None  # the gateway app (or AIClient's app) the call is made for
    form: str = "anthropic"  # the form of messages/system: "openai" only for a gateway request in OpenAI form
    rows: list[AttemptRecord] = field(default_factory=list)
    attempts: int = 0
    queue_wait_s: float = 0.0
    user_demands: list[Demand] = field(default_factory=list)  # charged per call, settled when the call ends
    user_reserved_tokens: int = 0
    used_tokens: int = 0  # what every attempt of the call spent (reported or estimated): the user's settled charge


class _NoVerdict:
    """The permit of an attempt the breaker neither gates nor learns from (a probe)."""

    __slots__ = ()

    def record(self, healthy: bool) -> None:
        pass

    def release(self) -> None:
        pass


NO_VERDICT = _NoVerdict()


@dataclass(slots=True)
class Lease:
    """One attempt in flight: everything that must be settled when it ends."""

    runtime: ProviderRuntime
    key: ApiKey
    permit: Permit | _NoVerdict
    prepared: PreparedRequest
    reserved_tokens: int
    key_demands: list[Demand]
    sent_at: float
    sent_at_wall: datetime
    queue_wait_s: float
    attempt: int
    priority: int
    fell_back_from: str | None
    settled: bool = False
    sent: Sent | None = None  # this attempt in the provider's own-use window (self-tuning limits)
