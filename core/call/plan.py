"""Where a call may go and what it sends there: its stages (the configured provider, then its fallback when the
caller allows it and that provider has keys) and each stage's request, prepared by that provider's adapter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pulsegate.core.call.context import CallContext
from pulsegate.core.provider import Provider
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest, RequestSpec
from pulsegate.core.request import CallOptions, ModelConfig
from pulsegate.core.token_estimate import estimate_input_tokens
from pulsegate.core.translate.model_map import ModelMap
from pulsegate.core.user_ids import hash_user_id


class Planner:
    def __init__(
        self, runtimes: Mapping[Provider, ProviderRuntime], model_map: ModelMap, user_id_key: bytes | None
    ) -> None:
        self.runtimes = runtimes
        self.model_map = model_map
        self.user_id_key = user_id_key

    def plan(self, config: ModelConfig, options: CallOptions) -> list[tuple[Provider, str]]:
        """``[(provider, model), …]``: the configured stage first, then the fallback's (if allowed and keyed)."""
        primary = Provider(config.provider)
        stages = [(primary, config.model)]
        if primary is Provider.ANTHROPIC and options.fallback_to_openai:
            stages.append((Provider.OPENAI, self.model_map.to_openai(config.model)))
        elif primary is Provider.OPENAI and options.fallback_to_anthropic:
            stages.append((Provider.ANTHROPIC, self.model_map.to_anthropic(config.model)))
        return [stages[0]] + [stage for stage in stages[1:] if len(self.runtimes[stage[0]].pool)]

    def provider_user_id(self, user_id: str | None) -> str | None:
        """What the provider is told about the end user: with ``HASH_USER_IDS``, the keyed hash the store holds."""
        if user_id is None or self.user_id_key is None:
            return user_id
        return hash_user_id(user_id, self.user_id_key)

    def prepare(
        self, ctx: CallContext, runtime: ProviderRuntime, model: str, extra: Mapping[str, Any] | None = None
    ) -> PreparedRequest:
        """The request for ``model`` on ``runtime``'s provider; ``extra`` is merged into the SDK arguments. Raises
        :class:`~pulsegate.core.errors.RequestValidationError` when that provider's format cannot carry the call."""
        config = ctx.config
        spec = RequestSpec(
            model=model,
            system=ctx.system,
            messages=ctx.messages,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            stop_sequences=list(config.stop_sequences) if config.stop_sequences else None,
            tools=config.tools,
            tool_choice=config.tool_choice,
            user_id=self.provider_user_id(ctx.options.user_id),
            estimated_input_tokens=estimate_input_tokens(ctx.system, ctx.messages, config.tools),
            form=ctx.form,
        )
        prepared = runtime.adapter.prepare(spec)
        if extra:
            prepared = replace(prepared, kwargs={**prepared.kwargs, **extra})
        return prepared
