"""Which model to ask on the other provider: Anthropic → OpenAI for fallback, and back for reporting.

Patterns are either literal ids, which also match dated/suffixed variants (``claude-sonnet-4-6`` matches
``claude-sonnet-4-6-20260217`` and ``claude-sonnet-4-6@20260217``), or ``fnmatch`` globs (``gpt-4o*``). Matching is
case-insensitive. The most specific pattern wins: an exact id, then the longest literal part, then a literal over
a glob; so ``gpt-4.1-mini-2025-04-14`` maps by ``gpt-4.1-mini``, not by ``gpt-4.1``.

Overrides given to :class:`ModelMap` are consulted before the defaults (an override ``claude-*`` beats every default).
A model that already belongs to the target provider (``claude-…`` for ``to_anthropic``; ``gpt-…``, ``chatgpt-…``,
``o1``/``o3``/``o4…``, ``ft:…`` for ``to_openai``) is returned unchanged; any other unmapped model gets the
direction's default (``gpt-4.1`` / ``claude-sonnet-4-6`` unless configured).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from types import MappingProxyType

DEFAULT_OPENAI_MODEL = "gpt-4.1"
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-4-6"

DEFAULT_TO_OPENAI: Mapping[str, str] = MappingProxyType(
    {
        "claude-sonnet-4-6": "gpt-4.1",
        "claude-opus-4-*": "gpt-4.1",
        "claude-opus-5*": "gpt-4.1",
        "claude-haiku-4-5": "gpt-4.1-mini",
    }
)
DEFAULT_TO_ANTHROPIC: Mapping[str, str] = MappingProxyType(
    {
        "gpt-4.1": "claude-sonnet-4-6",
        "gpt-4.1-mini": "claude-haiku-4-5",
        "gpt-4.1-nano": "claude-haiku-4-5",
        "gpt-4o*": "claude-sonnet-4-6",
        "gpt-5*": "claude-sonnet-4-6",
    }
)

_GLOB_CHARS = frozenset("*?[")
_VARIANT_SEPARATORS = ("-", "@")
_OPENAI_MODEL = re.compile(r"^(?:gpt-|chatgpt-|ft:|o\d)", re.IGNORECASE)
_ANTHROPIC_MODEL = re.compile(r"^claude-", re.IGNORECASE)


def _specificity(pattern: str, model: str) -> tuple[int, int, int] | None:
    """How well ``pattern`` matches ``model`` (higher is better), or ``None`` if it does not match."""
    pattern, model = pattern.casefold(), model.casefold()
    if any(char in _GLOB_CHARS for char in pattern):
        if not fnmatchcase(model, pattern):
            return None
        return (0, sum(char not in _GLOB_CHARS for char in pattern), 0)
    if model == pattern:
        return (1, len(pattern), 1)
    if any(model.startswith(pattern + separator) for separator in _VARIANT_SEPARATORS):
        return (0, len(pattern), 1)
    return None


def _lookup(table: Mapping[str, str], model: str) -> str | None:
    best: tuple[tuple[int, int, int], str] | None = None
    for pattern, target in table.items():
        score = _specificity(pattern, model)
        if score is not None and (best is None or score > best[0]):
            best = (score, target)
    return None if best is None else best[1]


def _checked(table: Mapping[str, str] | None, name: str) -> Mapping[str, str]:
    table = dict(table or {})
    for pattern, target in table.items():
        if not isinstance(pattern, str) or not pattern or not isinstance(target, str) or not target:
            raise ValueError(f"{name}: model map entries must be non-empty strings, got {pattern!r} -> {target!r}")
    return MappingProxyType(table)


class ModelMap:
    """Configurable model translation both ways, with the defaults above underneath any overrides."""

    def __init__(
        self,
        to_openai: Mapping[str, str] | None = None,
        to_anthropic: Mapping[str, str] | None = None,
        *,
        fallback_default: str = DEFAULT_OPENAI_MODEL,
        anthropic_default: str = DEFAULT_ANTHROPIC_MODEL,
    ) -> None:
        self.to_openai_overrides = _checked(to_openai, "to_openai")
        self.to_anthropic_overrides = _checked(to_anthropic, "to_anthropic")
        if not fallback_default or not anthropic_default:
            raise ValueError("model map defaults must be non-empty model ids")
        self.fallback_default = fallback_default
        self.anthropic_default = anthropic_default

    def to_openai(self, model: str) -> str:
        """The OpenAI model to use when the Anthropic ``model`` falls back."""
        mapped = _lookup(self.to_openai_overrides, model) or _lookup(DEFAULT_TO_OPENAI, model)
        if mapped is not None:
            return mapped
        return model if _OPENAI_MODEL.match(model) else self.fallback_default

    def to_anthropic(self, model: str) -> str:
        """The Anthropic model corresponding to the OpenAI ``model``."""
        mapped = _lookup(self.to_anthropic_overrides, model) or _lookup(DEFAULT_TO_ANTHROPIC, model)
        if mapped is not None:
            return mapped
        return model if _ANTHROPIC_MODEL.match(model) else self.anthropic_default

    def __repr__(self) -> str:
        return (
            f"ModelMap(to_openai={dict(self.to_openai_overrides)!r}, "
            f"to_anthropic={dict(self.to_anthropic_overrides)!r}, "
            f"fallback_default={self.fallback_default!r}, anthropic_default={self.anthropic_default!r})"
        )
