"""Token usage in one vocabulary for both providers, so cost and metrics code never branches on the provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _int(value: Any) -> int:
    """Providers send ``null`` for counters they did not fill in; a missing counter is zero tokens."""
    if value is None or isinstance(value, bool):
        return 0
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call, split the Anthropic way: the four counters are disjoint and priced separately.

    ``input_tokens`` excludes cached reads and cache writes (Anthropic's meaning), so ``total`` never double-counts.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written to the 1-hour cache (priced higher)

    @property
    def total(self) -> int:
        """Every token billed for the call: input + output + cache reads + cache writes."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def limited_tokens(self) -> int:
        """The tokens a tokens-per-minute limit counts: input, cache writes and output. Cache reads are left out,
        as the providers' own input-token limits leave them out."""
        return self.input_tokens + self.cache_write_tokens + self.output_tokens


def usage_from_openai(usage: Mapping[str, Any] | None) -> Usage:
    """OpenAI ``usage`` → :class:`Usage` (docs/provider-wire.md §4): ``prompt_tokens`` includes cached reads and
    writes, so subtract them.

    A missing ``usage`` (stream without ``include_usage``) gives all zeros.
    """
    if not usage:
        return Usage()
    details = usage.get("prompt_tokens_details") or {}
    cache_read = _int(details.get("cached_tokens"))
    cache_write = _int(details.get("cache_write_tokens"))
    prompt = _int(usage.get("prompt_tokens"))
    return Usage(
        input_tokens=max(prompt - cache_read - cache_write, 0),
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def usage_from_anthropic(usage: Mapping[str, Any] | None) -> Usage:
    """Anthropic ``usage`` → :class:`Usage`; the optional cache counters may be absent or ``null`` (→ 0)."""
    if not usage:
        return Usage()
    return Usage(
        input_tokens=_int(usage.get("input_tokens")),
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
        cache_write_tokens=_int(usage.get("cache_creation_input_tokens")),
        cache_write_1h_tokens=_int((usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens")),
    )
