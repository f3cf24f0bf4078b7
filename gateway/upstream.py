"""The gateway's HTTP client to the providers: the request's own bytes out with a provider key, the answer back.

aiohttp, not the SDKs: the gateway never builds SDK objects, so a request costs a fraction of an SDK call. One
session (one keep-alive pool) per process. A non-2xx answer is read and raised as the :class:`UpstreamError` the
call runner classifies exactly as the SDK path does (status, error type, ``retry-after``); the body is kept so a
request the provider refused (a 400 naming a field) reaches the caller as the provider worded it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.clock import Clock
from pulsegate.core.errors import ErrorClass, ProviderError
from pulsegate.core.provider import Provider
from pulsegate.core.providers.classify import classify_answer
from pulsegate.core.providers.sent_mark import headers_sent

DEFAULT_BASE = {Provider.ANTHROPIC: "https://api.anthropic.com", Provider.OPENAI: "https://api.openai.com/v1"}
ANTHROPIC_VERSION = "2023-06-01"
#: Request headers passed on to the provider as the caller sent them (everything else is the gateway's own).
_PASSED_ON = {Provider.ANTHROPIC: ("anthropic-version", "anthropic-beta"), Provider.OPENAI: ()}


class UpstreamError(ProviderError):
    """A provider's error answer (``body``: its bytes, ``response``: what it said, for the headers)."""

    def __init__(self, error: ProviderError, response: Any, body: bytes) -> None:
        super().__init__(
            str(error),
            provider=error.provider,
            error_class=error.error_class,
            http_status=error.http_status,
            key_label=error.key_label,
            retry_after=error.retry_after,
            request_id=error.request_id,
        )
        self.response = response
        self.body = body


async def _on_headers_sent(session: Any, context: Any, params: Any) -> None:
    headers_sent()


class Upstream:
    def __init__(self, base_urls: Mapping[Provider, str | None], clock: Clock) -> None:
        self.bases = {p: (base_urls.get(p) or DEFAULT_BASE[p]).rstrip("/") for p in Provider}
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_on_headers_sent)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
                trace_configs=[trace],
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    def url(self, provider: Provider, path: str) -> str:
        """``path`` as the caller sent it (``/v1/…``) on the provider's base URL (OpenAI's base ends in ``/v1``)."""
        base = self.bases[provider]
        if provider is Provider.OPENAI and base.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]
        return base + path

    def headers(self, provider: Provider, key: ApiKey, incoming: Mapping[str, str]) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        for name in _PASSED_ON[provider]:
            value = incoming.get(name)
            if value is not None:
                headers[name] = value
        if provider is Provider.ANTHROPIC:
            headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
            headers["x-api-key"] = key.reveal()
        else:
            headers["authorization"] = f"Bearer {key.reveal()}"
        return headers

    async def send(
        self,
        provider: Provider,
        key: ApiKey,
        path: str,
        body: bytes,
        incoming: Mapping[str, str],
        timeout_s: float,
        *,
        method: str = "POST",
    ) -> aiohttp.ClientResponse:
        """The provider's 2xx answer, headers read and body not yet (the caller reads or streams it, then releases
        it); a non-2xx answer is raised as :class:`UpstreamError`, a failed connection as a ``connection``
        :class:`ProviderError`."""
        try:
            response = await self.session().request(
                method,
                self.url(provider, path),
                data=body if method == "POST" else None,
                headers=self.headers(provider, key, incoming),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=min(10.0, timeout_s), sock_read=timeout_s),
            )
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _transport_error(provider, key, exc) from None
        if response.status < 400:
            return response
        try:
            data = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(provider, key, exc) from None
        finally:
            response.release()
        try:
            parsed: object = orjson.loads(data)
        except orjson.JSONDecodeError:
            parsed = None
        request_id = response.headers.get("request-id") or response.headers.get("x-request-id")
        error = classify_answer(
            provider, response.status, parsed, response.headers, self.clock.now(), key.label, request_id
        )
        raise UpstreamError(error, response, data)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _transport_error(provider: Provider, key: ApiKey, exc: BaseException) -> ProviderError:
    timed_out = isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError)
    error_class = ErrorClass.TIMEOUT if timed_out else ErrorClass.CONNECTION
    what = "the provider did not answer in time" if timed_out else f"connection failed ({type(exc).__name__})"
    return ProviderError(
        f"{provider.value} key {key.label!r}: {error_class.value}: {what}",
        provider=provider.value,
        error_class=error_class,
        key_label=key.label,
    )
