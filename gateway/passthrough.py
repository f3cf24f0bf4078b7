"""The provider adapter of a gateway instance: it prepares the reservation, and the translation a fallback needs.

The call runner asks each stage's adapter to prepare the request once; an in-process call needs the SDK's
arguments, but the gateway forwards the caller's own bytes, so for a request already in the provider's form all it
needs is the model and the tokens to reserve. A request in the other form — an Anthropic request falling back to
OpenAI — is translated here, once, into the OpenAI body (the same translation the in-process path uses); when it
cannot be (a block OpenAI cannot carry), the runner keeps the original failure instead of falling back. Every attempt
is sent by the gateway's own ``send`` (never this adapter's), so ``complete`` and ``stream`` refuse loudly.
"""

from __future__ import annotations

from typing import Any, NoReturn

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.errors import RequestValidationError
from pulsegate.core.provider import Provider
from pulsegate.core.providers.base import PreparedRequest, RequestSpec
from pulsegate.core.providers.openai_adapter import prepare_openai
from pulsegate.core.settings import Settings


class PassThroughAdapter:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def prepare(self, spec: RequestSpec) -> PreparedRequest:
        if spec.form == self.provider.value:
            return PreparedRequest(self.provider, spec.model, {}, spec.estimated_input_tokens, spec.max_tokens)
        if self.provider is not Provider.OPENAI:
            raise RequestValidationError(
                "invalid request: an OpenAI-form request cannot be sent to Anthropic", provider=self.provider.value
            )
        return prepare_openai(spec)

    async def complete(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> NoReturn:
        raise RuntimeError("a gateway instance sends with the gateway's own send; the adapter sends nothing")

    async def stream(self, key: ApiKey, request: PreparedRequest, timeout_s: float) -> Any:
        raise RuntimeError("a gateway instance sends with the gateway's own send; the adapter sends nothing")

    async def aclose(self) -> None:
        pass


def pass_through(provider: Provider, settings: Settings) -> PassThroughAdapter:
    return PassThroughAdapter(provider)
