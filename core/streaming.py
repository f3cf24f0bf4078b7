"""``AIClient.stream_response``: text deltas as they arrive, the final :class:`AIResponse` at the end.

A failure before the first delta is retried or falls back like any call (nothing reached the caller yet). After
the first delta a failure raises :class:`StreamInterruptedError` holding the partial text, and a stream that ends
without a stop reason is such a failure too — never a silently truncated success.

Three bounds, because a stream that trickles must not hold a caller forever: ``CallOptions.timeout_s`` until the
first delta (from the call's start, queue and retries included), ``stream_idle_timeout_s`` between two deltas and
``stream_total_timeout_s`` (optional) from the call's start to the last delta. An idle or total expiry is a
``stream_interrupted`` failure holding the partial text.

A stream that breaks or that the caller abandons was billed: its row carries the usage the provider reported so far
plus an estimate of the rest, priced and flagged ``usage_estimated`` — never a silent $0.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.call.context import CallContext
from pulsegate.core.call.runner import Call, CallRunner
from pulsegate.core.clock import Clock
from pulsegate.core.errors import CallError, ErrorClass, StreamInterruptedError
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest, ProviderStream
from pulsegate.core.providers.classify import classify_exception
from pulsegate.core.response import AIResponse
from pulsegate.core.translate.usage import Usage


class _Stalled(Exception):
    """No delta within the stream's idle bound, or past its total bound."""


@dataclass(slots=True)
class _Opened:
    stream: ProviderStream
    deltas: AsyncIterator[str]
    first: str | None
    ttft_ms: float


class ResponseStream:
    """Async context manager and async iterator of text deltas; ``response`` is set once the stream completes."""

    def __init__(self, runner: CallRunner, ctx: CallContext) -> None:
        self._clock: Clock = runner.clock
        self._ctx = ctx
        self._call: Call = runner.call(ctx)
        self._opened: _Opened | None = None
        self._done = False
        self._parts: list[str] = []
        self.response: AIResponse | None = None

    async def _open(
        self, runtime: ProviderRuntime, key: ApiKey, prepared: PreparedRequest, timeout_s: float
    ) -> _Opened:
        clock = self._clock
        sent = clock.monotonic()
        # the SDK's per-read timeout must not cut a gap the idle bound allows; the first delta is bounded by the call
        read_timeout_s = max(timeout_s, self._ctx.options.stream_idle_timeout_s + 1.0)
        stream = await runtime.adapter.stream(key, prepared, read_timeout_s)
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
            self._opened = await self._call.run(self._open)
        except BaseException:
            self._call.end()
            raise
        return self

    async def __aiter__(self) -> AsyncIterator[str]:
        if self._opened is None:
            raise RuntimeError("use the stream inside 'async with client.stream_response(...) as stream'")
        opened, call = self._opened, self._call
        parts = self._parts
        try:
            if opened.first is not None:
                parts.append(opened.first)
                yield opened.first
            while True:
                try:
                    async with asyncio.timeout(self._next_delta_bound()) as bound:
                        delta = await anext(opened.deltas)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    if not bound.expired():
                        raise
                    raise self._stalled() from exc
                parts.append(delta)
                yield delta
            result = opened.stream.result()
        except CallError:
            raise
        except _Stalled as stalled:
            await self._interrupted(stalled, ErrorClass.TIMEOUT, opened.ttft_ms)
        except Exception as exc:
            await self._interrupted(exc, None, opened.ttft_ms)
        else:
            cost = await call.succeed(result, opened.stream.headers, opened.ttft_ms)
            self.response = AIResponse.of_call(
                call, result, cost=cost, ttft_ms=opened.ttft_ms, now=self._clock.monotonic()
            )
            self._done = True
            call.end()

    def _next_delta_bound(self) -> float:
        """Seconds the next delta may take: the idle bound, or what is left of the total bound if that is less."""
        options = self._ctx.options
        bound = options.stream_idle_timeout_s
        if options.stream_total_timeout_s is not None:
            left = self._ctx.started + options.stream_total_timeout_s - self._clock.monotonic()
            bound = min(bound, max(left, 0.0))
        return bound

    def _stalled(self) -> _Stalled:
        options = self._ctx.options
        total = options.stream_total_timeout_s
        if total is not None and self._clock.monotonic() - self._ctx.started >= total - 0.001:
            return _Stalled(f"the stream ran past its total timeout of {total:g} s")
        return _Stalled(f"no delta for {options.stream_idle_timeout_s:g} s (stream_idle_timeout_s)")

    def _spent(self) -> Usage:
        """What the attempt cost so far: the provider's reported usage plus an estimate of the rest."""
        assert self._opened is not None and self._call.lease is not None
        reported = self._opened.stream.reported_usage
        return self._call.estimated_usage(reported, "".join(self._parts))

    async def _interrupted(self, exc: Exception, error_class: ErrorClass | None, ttft_ms: float) -> None:
        lease = self._call.lease
        assert lease is not None
        provider = lease.runtime.provider
        partial = "".join(self._parts)
        if error_class is None:
            cause = classify_exception(exc, provider, self._clock.now(), lease.key.label)
            why, status, request_id = f"{cause.error_class.value}: {cause}", cause.http_status, cause.request_id
        else:
            why, status, request_id = f"{error_class.value}: {exc}", None, None
        error = StreamInterruptedError(
            f"{provider.value} stream broke after {len(partial)} characters ({why})",
            partial_text=partial,
            provider=provider.value,
            key_label=lease.key.label,
            http_status=status,
            request_id=request_id,
        )
        await self._call.fail(error, ttft_ms=ttft_ms, usage=self._spent())
        self._done = True
        self._call.end()
        if self._opened is not None:
            await self._opened.stream.aclose()  # a stalled stream still holds its connection
        raise error from exc

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done and self._opened is not None:
            # The caller stopped reading (or raised, or was cancelled) before the end: a billed attempt, recorded
            # at once — before any await, so a second cancellation cannot lose it — without blaming the key.
            self._call.end(self._spent(), self._opened.ttft_ms)
            self._done = True
        if self._opened is not None:
            await self._opened.stream.aclose()

    def __repr__(self) -> str:
        state: Any = "done" if self._done else ("open" if self._opened else "not started")
        return f"ResponseStream(call_id={self._ctx.call_id}, {state})"
