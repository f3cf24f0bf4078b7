"""One chat request through the policy: the app's limits, then the same call runner an in-process ``AIClient`` uses
(key rotation, provider limits and the priority queue, retries, the breaker, one deadline), with the request's own
bytes as what each attempt sends; the answer relayed as it arrives and recorded like any call (``source='gateway'``,
the app's name).

A client that goes away mid-call cancels the handler: the attempt in flight is recorded ``cancelled`` (with the
usage seen so far, estimated where the provider had not reported it) and the upstream request is closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pulsegate.core.apps.model import AppPolicy
from pulsegate.core.call.context import CallContext
from pulsegate.core.call.runner import Call
from pulsegate.core.errors import CallError, ErrorClass, ProviderError, StreamInterruptedError
from pulsegate.core.ids import uuid7
from pulsegate.core.instance import Instance
from pulsegate.core.provider import Provider
from pulsegate.core.providers.classify import classify_exception
from pulsegate.core.request import ModelConfig
from pulsegate.core.translate.responses import anthropic_message_to_normalized, openai_response_to_normalized
from pulsegate.core.translate.streams import AnthropicStreamAccumulator, OpenAIStreamAccumulator
from pulsegate.gateway.anthropic_form import AnthropicEventWriter, anthropic_message
from pulsegate.gateway.app_limits import app_demands, limit_headers
from pulsegate.gateway.controls import call_options
from pulsegate.gateway.inbound import Inbound
from pulsegate.gateway.upstream import Upstream, UpstreamError
from pulsegate.gateway.wire import Wire, call_error_response, error_body

REQUEST_ID_HEADER = {Provider.ANTHROPIC: "request-id", Provider.OPENAI: "x-request-id"}
_PASSED_BACK = ("request-id", "x-request-id", "openai-processing-ms")


class Relay:
    def __init__(self, instance: Instance, upstream: Upstream) -> None:
        self.instance = instance
        self.upstream = upstream
        self.clock = instance.clock

    def context(self, inbound: Inbound, headers: Mapping[str, str], app: AppPolicy) -> CallContext:
        options = call_options(headers, app, inbound.user_id)
        now = self.clock.monotonic()
        extras = inbound.extras
        config = ModelConfig(
            model=inbound.model,
            provider=inbound.provider.value,
            max_tokens=inbound.max_tokens,
            temperature=extras.get("temperature"),
            stop_sequences=extras.get("stop_sequences"),
            tools=extras.get("tools"),
            tool_choice=extras.get("tool_choice"),
        )
        return CallContext(
            call_id=uuid7(),
            config=config,
            messages=inbound.messages,
            system=inbound.system,
            options=options,
            started=now,
            started_at=self.clock.now(),
            deadline=now + options.timeout_s,
            source="gateway",
            streamed=inbound.stream,
            app=app.name,
            form=inbound.wire.value,
        )

    async def chat(self, request: web.Request, inbound: Inbound, app: AppPolicy) -> web.StreamResponse:
        ctx = self.context(inbound, request.headers, app)
        wire = inbound.wire
        if not app.allows_model(inbound.model):
            return _error(wire, 403, f"app {app.name!r} may not call model {inbound.model!r}", "permission_error")
        limiter = self.instance.limiter
        demands = app_demands(app, inbound.estimated_input_tokens + inbound.max_tokens, self.instance.period_s)
        if demands:
            wait = await limiter.try_acquire(demands)
            if wait > 0:
                return self._over_app_limit(ctx, inbound, app, demands, wait)
        out = {
            "x-pulsegate-call-id": str(ctx.call_id),
            "x-pulsegate-provider": inbound.provider.value,
            "x-pulsegate-fell-back": "false",
            **limit_headers(wire, limiter, demands, self.clock),
        }

        async def send(runtime: Any, key: Any, prepared: Any, timeout_s: float) -> tuple[Any, bytes | None]:
            path, body = inbound.path, inbound.body
            if runtime.provider is not inbound.provider:  # the fallback stage: the request translated once
                path, body = "/v1/chat/completions", _translated_body(prepared.kwargs, inbound.stream)
            response = await self.upstream.send(runtime.provider, key, path, body, request.headers, timeout_s)
            if inbound.stream:
                return response, None
            try:  # inside the attempt: the deadline bounds the body too
                return response, await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise ProviderError(
                    f"{runtime.provider.value} key {key.label!r}: connection: the answer broke off "
                    f"({type(exc).__name__})",
                    provider=runtime.provider.value,
                    error_class=ErrorClass.CONNECTION,
                    key_label=key.label,
                ) from None
            finally:
                response.release()

        async with self.instance.runner.call(ctx) as call:
            try:
                response, data = await call.run(send)
            except UpstreamError as error:
                if error.error_class in (ErrorClass.BAD_REQUEST, ErrorClass.NOT_FOUND, ErrorClass.TOO_LARGE):
                    # the provider refused the request itself: its own words reach the caller
                    return web.Response(
                        status=error.http_status or 400,
                        body=error.body,
                        content_type="application/json",
                        headers={**out, "x-should-retry": "false"},
                    )
                return _call_error(wire, error, out)
            except CallError as error:
                return _call_error(wire, error, out)
            for name in _PASSED_BACK:
                if name in response.headers:
                    out[name] = response.headers[name]
            provider = call.lease.runtime.provider if call.lease is not None else inbound.provider
            if provider is not inbound.provider:
                out["x-pulsegate-provider"] = provider.value
                out["x-pulsegate-fell-back"] = "true"
            if data is not None:
                return await self._complete(call, inbound, provider, response, data, out)
            return await self._stream(request, call, inbound, provider, response, out)

    async def _complete(
        self, call: Call, inbound: Inbound, provider: Provider, response: Any, data: bytes, out: dict[str, str]
    ) -> web.StreamResponse:
        request_id = response.headers.get(REQUEST_ID_HEADER[provider])
        try:
            parsed = orjson.loads(data)
            if provider is Provider.ANTHROPIC:
                normalized = anthropic_message_to_normalized(parsed, request_id=request_id)
            else:
                normalized = openai_response_to_normalized(parsed, request_id=request_id)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            error = ProviderError(
                f"{inbound.provider.value}: server_error: the provider's answer could not be read "
                f"({type(exc).__name__})",
                provider=inbound.provider.value,
                error_class=ErrorClass.SERVER_ERROR,
            )
            await call.fail(error, usage=call.estimated_usage())
            return _call_error(inbound.wire, error, out)
        await call.succeed(normalized, response.headers)
        if provider is not inbound.provider:  # answered by the fallback: in the caller's form
            data = anthropic_message(normalized, f"msg_{call.ctx.call_id.hex}")
        return web.Response(status=response.status, body=data, content_type="application/json", headers=out)

    async def _stream(
        self,
        request: web.Request,
        call: Call,
        inbound: Inbound,
        provider: Provider,
        response: Any,
        out: dict[str, str],
    ) -> web.StreamResponse:
        """Events reach the client as they arrive: each complete event is written as soon as it is read (translated
        to Anthropic events when the fallback answers an Anthropic request)."""
        writer = (
            AnthropicEventWriter(f"msg_{call.ctx.call_id.hex}", inbound.model)
            if provider is not inbound.provider
            else None
        )
        request_id = response.headers.get(REQUEST_ID_HEADER[provider])
        accumulator: Any = (
            AnthropicStreamAccumulator(request_id=request_id)
            if provider is Provider.ANTHROPIC
            else OpenAIStreamAccumulator(request_id=request_id)
        )
        lease = call.lease
        assert lease is not None
        client = web.StreamResponse(
            status=200, headers={**out, "content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        idle_s = call.ctx.options.stream_idle_timeout_s
        ttft_ms: float | None = None
        pending = b""
        try:
            await client.prepare(request)
            while True:
                try:
                    chunk = await asyncio.wait_for(response.content.readany(), idle_s)
                except TimeoutError:
                    raise StreamInterruptedError(
                        f"{provider.value}: stream_interrupted: no event for {idle_s:g} s",
                        provider=provider.value,
                        partial_text=accumulator.text,
                    ) from None
                if not chunk:
                    break
                if ttft_ms is None:
                    ttft_ms = (self.clock.monotonic() - lease.sent_at) * 1000.0
                pending += chunk
                events, _, pending = pending.rpartition(b"\n\n")
                if events:
                    await _relay(client, events + b"\n\n", accumulator, inbound.usage_asked, writer)
            if pending.strip():
                await _relay(client, pending + b"\n\n", accumulator, inbound.usage_asked, writer)
            if writer is not None:
                reported = accumulator.reported_usage
                await client.write(writer.finish(reported.output_tokens if reported else 0))
            normalized = accumulator.result()
        except asyncio.CancelledError:
            call.end(usage=call.estimated_usage(accumulator.reported_usage, accumulator.text), ttft_ms=ttft_ms)
            raise
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):  # the client went away
            call.end(usage=call.estimated_usage(accumulator.reported_usage, accumulator.text), ttft_ms=ttft_ms)
            return client
        except (CallError, ValueError, aiohttp.ClientError) as exc:
            if isinstance(exc, CallError):
                error: CallError = exc
            elif isinstance(exc, ValueError):  # an error event, or a stream that ended without saying why
                error = classify_exception(exc, provider, self.clock.now(), lease.key.label)
            else:
                error = _broken(provider, exc, accumulator.text)
            await call.fail(
                error, ttft_ms=ttft_ms, usage=call.estimated_usage(accumulator.reported_usage, accumulator.text)
            )
            return client
        finally:
            response.release()
        await call.succeed(normalized, response.headers, ttft_ms)
        await client.write_eof()
        return client

    def _over_app_limit(
        self, ctx: CallContext, inbound: Inbound, app: AppPolicy, demands: list, wait: float
    ) -> web.StreamResponse:
        """The app is over its own RPM/TPM: a 429 with an integer ``retry-after`` (the SDK waits it out), and a
        ``user_rate_limited`` row like any caller over a limit the operator set."""
        runner = self.instance.runner
        runner.rows.record(
            ctx, ts=self.clock.now(), attempt=1, provider=inbound.provider.value, model=inbound.model,
            priority=ctx.options.priority, error_class=ErrorClass.USER_RATE_LIMITED,
        )  # fmt: skip
        runner.rows.finish(ctx)
        seconds = max(1, int(-(-wait // 1)))
        message = f"app {app.name!r} is over its own limit; it frees up in {wait:.1f} s"
        return web.Response(
            status=429,
            body=error_body(inbound.wire, 429, message, code="rate_limit_exceeded"),
            content_type="application/json",
            headers={
                "retry-after": str(seconds),
                "x-pulsegate-call-id": str(ctx.call_id),
                **limit_headers(inbound.wire, self.instance.limiter, demands, self.clock),
            },
        )


async def _relay(
    client: web.StreamResponse,
    block: bytes,
    accumulator: Any,
    usage_asked: bool,
    writer: AnthropicEventWriter | None = None,
) -> None:
    """Write a block of complete events to the client and feed each one's JSON to the accumulator. The usage chunk
    the gateway asked for is kept from an OpenAI caller that did not ask for it; an error event reaches the client
    before the attempt fails on it. With ``writer`` (a fallback), the client gets the Anthropic events it makes."""
    kept: list[bytes] = []
    error: ValueError | None = None
    for event in block.split(b"\n\n"):
        if not event.strip():
            continue
        data = b"".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if data and data != b"[DONE]":
            parsed = orjson.loads(data)
            usage_only = isinstance(parsed, dict) and parsed.get("usage") and not parsed.get("choices")
            try:
                accumulator.feed(parsed)
            except ValueError as exc:
                error = exc
            if writer is not None:
                kept.append(writer.feed(parsed) if isinstance(parsed, dict) else b"")
                continue
            if usage_only and not usage_asked:
                continue
        elif writer is not None:
            continue  # OpenAI's [DONE]: the Anthropic stream ends with message_stop instead
        kept.append(event + b"\n\n")
    await client.write(b"".join(kept))
    if error is not None:
        raise error


def _translated_body(kwargs: dict[str, Any], stream: bool) -> bytes:
    if stream:
        return orjson.dumps({**kwargs, "stream": True, "stream_options": {"include_usage": True}})
    return orjson.dumps(kwargs)


def _broken(provider: Provider, exc: BaseException, text: str) -> StreamInterruptedError:
    return StreamInterruptedError(
        f"{provider.value}: stream_interrupted: the stream broke off ({type(exc).__name__})",
        provider=provider.value,
        partial_text=text,
    )


def _error(wire: Wire, status: int, message: str, kind: str | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(wire, status, message, kind=kind),
        content_type="application/json",
        headers={"x-should-retry": "false"},
    )


def _call_error(wire: Wire, error: CallError, out: dict[str, str]) -> web.Response:
    status, body, headers = call_error_response(wire, error)
    return web.Response(status=status, body=body, content_type="application/json", headers={**out, **headers})
