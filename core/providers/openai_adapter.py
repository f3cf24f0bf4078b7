"""OpenAI Chat Completions through the official ``openai`` SDK, fed Anthropic-form requests via translation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai

from core.api_keys import ApiKey, Provider
from core.providers.base import Completion, PreparedRequest
from core.translate.requests import anthropic_to_openai_request
from core.translate.responses import openai_response_to_normalized
from core.translate.result import NormalizedResponse
from core.translate.streams import OpenAIStreamAccumulator


class OpenAIStream:
    def __init__(self, stream: openai.AsyncStream[Any]) -> None:
        self._stream = stream
        self.headers: Mapping[str, str] = stream.response.headers
        self._accumulator = OpenAIStreamAccumulator(request_id=self.headers.get("x-request-id"))

    async def __aiter__(self) -> AsyncIterator[str]:
        async for chunk in self._stream:
            delta = self._accumulator.feed(chunk.to_dict())
            if delta:
                yield delta

    def result(self) -> NormalizedResponse:
        return self._accumulator.result()

    @property
    def partial_text(self) -> str:
        return self._accumulator.text

    async def aclose(self) -> None:
        await self._stream.close()


class OpenAIAdapter:
    provider = Provider.OPENAI

    def __init__(self, base_url: str | None = None, http_client: Any | None = None) -> None:
        self.base_url = base_url
        self._http = http_client or openai.DefaultAsyncHttpxClient()
        self._clients: dict[str, openai.AsyncOpenAI] = {}

    def _client(self, key: ApiKey) -> openai.AsyncOpenAI:
        client = self._clients.get(key.fingerprint)
        if client is None:
            client = openai.AsyncOpenAI(
                api_key=key.reveal(), base_url=self.base_url, max_retries=0, http_client=self._http
            )
            self._clients[key.fingerprint] = client
        return client

    def prepare(
        self,
        *,
        model: str,
        system: str | list[dict[str, Any]] | None,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float | None,
        stop_sequences: list[str] | None,
        tools: list[dict[str, Any]] | None,
        tool_choice: dict[str, Any] | None,
        estimated_input_tokens: int,
        user_id: str | None = None,
    ) -> PreparedRequest:
        kwargs = anthropic_to_openai_request(
            model=model,
            system=system,
            messages=messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stop_sequences=list(stop_sequences) if stop_sequences else None,
            tools=tools,
            tool_choice=tool_choice,
            metadata_user_id=user_id,
        )
        return PreparedRequest(Provider.OPENAI, model, kwargs, estimated_input_tokens, max_tokens)

    async def complete(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> Completion:
        raw = await self._client(key).chat.completions.with_raw_response.create(**request.kwargs, timeout=timeout_s)
        data = json.loads(raw.http_response.content)
        response = openai_response_to_normalized(data, request_id=raw.headers.get("x-request-id"))
        return Completion(response, raw.headers)

    async def stream(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> OpenAIStream:
        stream = await self._client(key).chat.completions.create(
            **request.kwargs, stream=True, stream_options={"include_usage": True}, timeout=timeout_s
        )
        return OpenAIStream(stream)

    async def aclose(self) -> None:
        await self._http.aclose()
        self._clients.clear()
