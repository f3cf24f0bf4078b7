"""The shape every provider adapter has: prepare a request once, send it with a key, or stream it.

An adapter owns one SDK client per key over one shared connection pool (no per-call client construction), turns
SDK answers into :class:`~pulsegate.core.translate.NormalizedResponse`, and lets SDK exceptions through for
:mod:`pulsegate.core.providers.classify` to name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.provider import Provider
from pulsegate.core.translate.result import NormalizedResponse
from pulsegate.core.translate.usage import Usage


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One call's request in Anthropic form, for one provider and model; adapters turn it into SDK arguments."""

    model: str
    system: str | list[dict[str, Any]] | None
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float | None = None
    stop_sequences: list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    user_id: str | None = None
    estimated_input_tokens: int = 0
    #: the form of ``system``/``messages``/``tools``: ``anthropic`` for every in-process call; ``openai`` for a gateway
    #: request that arrived in OpenAI form (only the gateway's pass-through adapter sees one)
    form: str = "anthropic"


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """The SDK keyword arguments for one call on one provider, built once and reused by every attempt."""

    provider: Provider
    model: str
    kwargs: dict[str, Any]
    estimated_input_tokens: int
    max_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    response: NormalizedResponse
    headers: Mapping[str, str]


class ProviderStream(Protocol):
    """An open stream: iterate for text deltas; ``result()`` once it is exhausted. ``reported_usage``: what the
    provider has reported of the usage so far (None when nothing yet), for a stream that ends early."""

    headers: Mapping[str, str]
    reported_usage: Usage | None

    def __aiter__(self) -> AsyncIterator[str]: ...

    def result(self) -> NormalizedResponse: ...

    async def aclose(self) -> None: ...


class ProviderAdapter(Protocol):
    provider: Provider

    def prepare(self, spec: RequestSpec) -> PreparedRequest: ...

    async def complete(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> Completion: ...

    async def stream(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> ProviderStream: ...

    async def aclose(self) -> None: ...
