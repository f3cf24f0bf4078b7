"""``AIClient.stream_response``: text deltas as they arrive, the final :class:`AIResponse` at the end.

A failure before the first delta is retried or falls back like any call (nothing reached the caller yet). After
the first delta a failure raises :class:`StreamInterruptedError` holding the partial text, and a stream that ends
without a stop reason is such a failure too — never a silently truncated success.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from core.api_keys import ApiKey
from core.call_runner import CallContext, Lease
from core.errors import CallError, ErrorClass, StreamInterruptedError
from core.provider_runtime import ProviderRuntime
from core.providers.base import PreparedRequest, ProviderStream
from core.providers.classify import classify_exception
from core.response import AIResponse

if TYPE_CHECKING:
    from core.client import AIClient


@dataclass(slots=True)
class _Opened:
    stream: ProviderStream
    deltas: AsyncIterator[str]
    first: str | None
    ttft_ms: float


class ResponseStream:
    """Async context manager and async iterator of text deltas; ``response`` is set once the stream completes."""

    def __init__(self, client: AIClient, ctx: CallContext) -> None:
        self._client = client
        self._ctx = ctx
        self._opened: _Opened | None = None
        self._lease: Lease | None = None
        self._done = False
        self.response: AIResponse | None = None

    async def _open(
        self, runtime: ProviderRuntime, key: ApiKey, prepared: PreparedRequest, timeout_s: float
    ) -> _Opened:
        clock = self._client.clock
        sent = clock.monotonic()
        stream = await runtime.adapter.stream(key, prepared, timeout_s)
        deltas = aiter(stream)
        try:
            first: str | None = await anext(deltas)
        except StopAsyncIteration:
            first = None
            try:
                stream.result()  # ended before any text: complete (tool-only) or cut short — retried like any call
            except BaseException:
                await stream.aclose()
                raise
        except BaseException:
            await stream.aclose()
            raise
        return _Opened(stream, deltas, first, (clock.monotonic() - sent) * 1000.0)

    async def __aenter__(self) -> ResponseStream:
        try:
            self._opened, self._lease = await self._client._runner.run(self._ctx, self._open)
        except BaseException:
            self._client._runner.finish(self._ctx)
            raise
        return self

    async def __aiter__(self) -> AsyncIterator[str]:
        if self._opened is None or self._lease is None:
            raise RuntimeError("use the stream inside 'async with client.stream_response(...) as stream'")
        opened, lease, runner = self._opened, self._lease, self._client._runner
        parts: list[str] = []
        try:
            if opened.first is not None:
                parts.append(opened.first)
                yield opened.first
            async for delta in opened.deltas:
                parts.append(delta)
                yield delta
            result = opened.stream.result()
        except CallError:
            raise
        except Exception as exc:
            await self._interrupted(exc, "".join(parts), opened.ttft_ms)
        else:
            cost = await runner.settle_success(self._ctx, lease, result, opened.stream.headers, opened.ttft_ms)
            self.response = self._client._response(self._ctx, lease, result, cost, opened.ttft_ms)
            self._done = True
            runner.finish(self._ctx)

    async def _interrupted(self, exc: Exception, partial: str, ttft_ms: float) -> None:
        assert self._lease is not None
        lease = self._lease
        provider = lease.runtime.provider
        cause = classify_exception(exc, provider, self._client.clock.now(), lease.key.label)
        error = StreamInterruptedError(
            f"{provider.value} stream broke after {len(partial)} characters ({cause.error_class.value}: {cause})",
            partial_text=partial,
            provider=provider.value,
            key_label=lease.key.label,
            http_status=cause.http_status,
            request_id=cause.request_id,
        )
        await self._client._runner.settle_failure(self._ctx, lease, error, None, ttft_ms)
        await self._client._runner.settle_user(self._ctx, 0)
        self._done = True
        self._client._runner.finish(self._ctx)
        raise error from exc

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._opened is not None:
            await self._opened.stream.aclose()
        if not self._done and self._lease is not None:
            # The caller stopped reading (or raised) before the end: record it, without blaming the key.
            stopped = CallError(
                "the caller stopped reading the stream",
                error_class=ErrorClass.CANCELLED,
                provider=self._lease.runtime.provider.value,
            )
            await self._client._runner.settle_failure(self._ctx, self._lease, stopped)
            await self._client._runner.settle_user(self._ctx, 0)
            self._done = True
            self._client._runner.finish(self._ctx)

    def __repr__(self) -> str:
        state: Any = "done" if self._done else ("open" if self._opened else "not started")
        return f"ResponseStream(call_id={self._ctx.call_id}, {state})"
