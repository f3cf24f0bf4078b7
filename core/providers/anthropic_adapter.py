"""Anthropic Messages through the official ``anthropic`` SDK (retries off: Pulsegate retries)."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.provider import Provider
from pulsegate.core.providers.base import Completion, PreparedRequest, RequestSpec
from pulsegate.core.providers.sdk_clients import SdkClients
from pulsegate.core.providers.sdk_stream import SdkStream
from pulsegate.core.translate.responses import anthropic_message_to_normalized
from pulsegate.core.translate.streams import AnthropicStreamAccumulator


class AnthropicAdapter:
    provider = Provider.ANTHROPIC

    def __init__(self, base_url: str | None = None, http_client: Any | None = None) -> None:
        self.base_url = base_url
        self._clients: SdkClients[anthropic.AsyncAnthropic] = SdkClients(
            lambda secret, http: anthropic.AsyncAnthropic(
                api_key=secret, base_url=base_url, max_retries=0, http_client=http
            ),
            http_client or anthropic.DefaultAsyncHttpxClient(),
        )

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        kwargs: dict[str, Any] = {"model": spec.model, "max_tokens": spec.max_tokens, "messages": spec.messages}
        if spec.system:
            kwargs["system"] = spec.system
        if spec.stop_sequences:
            kwargs["stop_sequences"] = list(spec.stop_sequences)
        if spec.tools:
            kwargs["tools"] = spec.tools
        if spec.tool_choice:
            kwargs["tool_choice"] = spec.tool_choice
        if spec.user_id:
            kwargs["metadata"] = {"user_id": spec.user_id}
        if spec.temperature is not None:
            # not a typed parameter of anthropic >= 1.0; the API still reads it from the body
            kwargs["extra_body"] = {"temperature": spec.temperature}
        return PreparedRequest(Provider.ANTHROPIC, spec.model, kwargs, spec.estimated_input_tokens, spec.max_tokens)

    async def complete(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> Completion:
        raw = await self._clients.get(key).messages.with_raw_response.create(**request.kwargs, timeout=timeout_s)
        # Parse the JSON ourselves: building the SDK's pydantic model would only be thrown away.
        data = json.loads(await raw.read())
        response = anthropic_message_to_normalized(data, request_id=raw.headers.get("request-id"))
        return Completion(response, raw.headers)

    async def stream(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> SdkStream:
        stream = await self._clients.get(key).messages.create(**request.kwargs, stream=True, timeout=timeout_s)
        return SdkStream(stream, AnthropicStreamAccumulator(request_id=stream.response.headers.get("request-id")))

    async def aclose(self) -> None:
        await self._clients.aclose()
