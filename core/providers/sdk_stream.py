"""An SDK stream read as text deltas, whichever provider: the accumulator knows the provider's event shapes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from pulsegate.core.translate.result import NormalizedResponse
from pulsegate.core.translate.usage import Usage


class StreamAccumulator(Protocol):
    text: str
    reported_usage: Usage | None

    def feed(self, event: Mapping[str, Any]) -> str: ...

    def result(self) -> NormalizedResponse: ...


class SdkStream:
    """Wraps an ``anthropic``/``openai`` ``AsyncStream``; iterating yields non-empty text deltas."""

    def __init__(self, stream: Any, accumulator: StreamAccumulator) -> None:
        self._stream = stream
        self._accumulator = accumulator
        self.headers: Mapping[str, str] = stream.response.headers

    async def __aiter__(self) -> AsyncIterator[str]:
        feed = self._accumulator.feed
        async for event in self._stream:
            delta = feed(event.to_dict())
            if delta:
                yield delta

    def result(self) -> NormalizedResponse:
        return self._accumulator.result()

    @property
    def partial_text(self) -> str:
        return self._accumulator.text

    @property
    def reported_usage(self) -> Usage | None:
        return self._accumulator.reported_usage

    async def aclose(self) -> None:
        await self._stream.close()
