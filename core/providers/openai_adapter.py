"""OpenAI Chat Completions through the official ``openai`` SDK, fed Anthropic-form requests via translation."""

from __future__ import annotations

import json
from typing import Any

import openai

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.provider import Provider
from pulsegate.core.providers.base import Completion, PreparedRequest, RequestSpec
from pulsegate.core.providers.sdk_clients import SdkClients
from pulsegate.core.providers.sdk_stream import SdkStream
from pulsegate.core.translate.requests import anthropic_to_openai_request
from pulsegate.core.translate.responses import openai_response_to_normalized
from pulsegate.core.translate.streams import OpenAIStreamAccumulator


def prepare_openai(spec: RequestSpec) -> PreparedRequest:
    """The Chat Completions arguments for an Anthropic-form request (the gateway's fallback builds its body from
    the same); raises :class:`~pulsegate.core.errors.RequestValidationError` when OpenAI cannot carry it."""
    kwargs = anthropic_to_openai_request(
        model=spec.model,
        system=spec.system,
        messages=spec.messages,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
        stop_sequences=spec.stop_sequences,
        tools=spec.tools,
        tool_choice=spec.tool_choice,
        metadata_user_id=spec.user_id,
    )
    return PreparedRequest(Provider.OPENAI, spec.model, kwargs, spec.estimated_input_tokens, spec.max_tokens)


class OpenAIAdapter:
    provider = Provider.OPENAI

    def __init__(self, base_url: str | None = None, http_client: Any | None = None) -> None:
        self.base_url = base_url
        self._clients: SdkClients[openai.AsyncOpenAI] = SdkClients(
            lambda secret, http: openai.AsyncOpenAI(api_key=secret, base_url=base_url, max_retries=0, http_client=http),
            http_client or openai.DefaultAsyncHttpxClient(),
        )

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        return prepare_openai(spec)

    async def complete(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> Completion:
        raw = await self._clients.get(key).chat.completions.with_raw_response.create(
            **request.kwargs, timeout=timeout_s
        )
        data = json.loads(raw.http_response.content)
        response = openai_response_to_normalized(data, request_id=raw.headers.get("x-request-id"))
        return Completion(response, raw.headers)

    async def stream(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> SdkStream:
        stream = await self._clients.get(key).chat.completions.create(
            **request.kwargs, stream=True, stream_options={"include_usage": True}, timeout=timeout_s
        )
        return SdkStream(stream, OpenAIStreamAccumulator(request_id=stream.response.headers.get("x-request-id")))

    async def aclose(self) -> None:
        await self._clients.aclose()
