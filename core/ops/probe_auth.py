"""The free auth check: list the models with a key (``GET /v1/models``) — no tokens, no charge.

It tells whether the key is accepted (401) and its organisation allowed (403), nothing about quota, credit or
overload; with ``PROBE_AUTH_CHECK`` on, a probe runs it first and skips the paid request for a key that is refused.
A short-lived SDK client per check (official SDK, retries off): probes are rare, so no pool is kept for them.
"""

from __future__ import annotations

from typing import Any

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.provider import Provider


async def list_models(provider: Provider, base_url: str | None, key: ApiKey, timeout_s: float) -> Any:
    """One models-listing request with ``key``; SDK exceptions pass through for the classifier."""
    if provider is Provider.ANTHROPIC:
        import anthropic

        async with anthropic.AsyncAnthropic(api_key=key.reveal(), base_url=base_url, max_retries=0) as client:
            return await client.models.list(limit=1, timeout=timeout_s)
    import openai

    async with openai.AsyncOpenAI(api_key=key.reveal(), base_url=base_url, max_retries=0) as client:
        return await client.models.list(timeout=timeout_s)
