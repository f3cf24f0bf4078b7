"""What an attempt cost, from a shipped price table that a file can override or extend.

A model that is in no table costs ``None`` — recorded as unpriced — never 0: a free-looking row would hide spend.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pulsegate.core.errors import ConfigError
from pulsegate.core.translate.usage import Usage

PER_MILLION = 1_000_000
_FIELDS = ("input", "output", "cache_write", "cache_read", "cache_write_1h")
#: Anthropic's 1-hour cache write costs twice the input price (the 5-minute write 1.25×): used when a table omits it.
CACHE_WRITE_1H_TIMES_INPUT = 2.0
#: A dated or aliased id of a listed model: claude-sonnet-4-6-20260217, gpt-4.1-2025-04-14, claude-opus-4-6-latest.
_VERSION_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. A missing 5-minute cache write or cache read price falls back to the input price; a
    missing 1-hour cache write price to twice the input price (never to the cheaper 5-minute rate)."""

    input: float
    output: float
    cache_write: float | None = None
    cache_read: float | None = None
    cache_write_1h: float | None = None

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float:
        """``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written to the 1-hour cache."""
        cache_write = self.input if self.cache_write is None else self.cache_write
        cache_read = self.input if self.cache_read is None else self.cache_read
        one_hour = self.input * CACHE_WRITE_1H_TIMES_INPUT if self.cache_write_1h is None else self.cache_write_1h
        long_writes = min(cache_write_1h_tokens, cache_write_tokens)
        total = (
            input_tokens * self.input
            + output_tokens * self.output
            + (cache_write_tokens - long_writes) * cache_write
            + long_writes * one_hour
            + cache_read_tokens * cache_read
        )
        return total / PER_MILLION


class PriceTable:
    """Prices per provider and model id; a dated id (``…-20260217``, ``…-2025-04-14``) takes its model's price.

    Nothing looser: an unlisted ``claude-opus-4-9`` must not inherit ``claude-opus-4``'s price.
    """

    def __init__(self, prices: Mapping[str, Mapping[str, ModelPrice]]) -> None:
        self._prices = {provider: dict(models) for provider, models in prices.items()}
        self._cache: dict[tuple[str, str], ModelPrice | None] = {}

    @classmethod
    def load(cls, override: Path | str | None = None) -> PriceTable:
        """The shipped table, with ``override`` (a TOML file of the same shape) laid over it."""
        shipped = resources.files("pulsegate.core").joinpath("data/prices.toml").read_text("utf-8")
        prices = _parse(tomllib.loads(shipped), "the shipped price table")
        if override is not None:
            path = Path(override)
            try:
                extra = _parse(tomllib.loads(path.read_text("utf-8")), str(path))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError([f"PRICE_TABLE_FILE={str(path)!r}: cannot be read as TOML ({exc})"]) from None
            for provider, models in extra.items():
                prices.setdefault(provider, {}).update(models)
        return cls(prices)

    def price(self, provider: str, model: str) -> ModelPrice | None:
        key = (provider, model)
        if key not in self._cache:
            models = self._prices.get(provider, {})
            self._cache[key] = models.get(model) or models.get(_VERSION_SUFFIX.sub("", model))
        return self._cache[key]

    def cost(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float | None:
        """USD, or ``None`` when the model is unpriced."""
        price = self.price(provider, model)
        if price is None:
            return None
        return price.cost(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cache_write_1h_tokens)

    def cost_of(self, provider: str, models: tuple[str, ...], usage: Usage) -> float | None:
        """The cost of ``usage`` at the first of ``models`` that has a price (the answer's model id, then the one
        asked for), or ``None`` when none has."""
        for model in models:
            cost = self.cost(
                provider,
                model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.cache_write_1h_tokens,
            )
            if cost is not None:
                return cost
        return None


def _parse(document: Mapping[str, object], source: str) -> dict[str, dict[str, ModelPrice]]:
    problems: list[str] = []
    prices: dict[str, dict[str, ModelPrice]] = {}
    for provider, models in document.items():
        if provider not in ("anthropic", "openai") or not isinstance(models, Mapping):
            problems.append(f"[{provider}]: expected a table named [anthropic] or [openai]")
            continue
        for model, entry in models.items():
            where = f"{provider}.{model!r}"
            if not isinstance(entry, Mapping):
                problems.append(f"{where}: expected {{ input = …, output = … }}")
                continue
            unknown = set(entry) - set(_FIELDS)
            values = {name: entry.get(name) for name in _FIELDS}
            bad = [
                name
                for name, value in values.items()
                if value is not None and (not isinstance(value, int | float) or isinstance(value, bool) or value < 0)
            ]
            if unknown:
                problems.append(f"{where}: unknown field(s) {sorted(unknown)}; expected {list(_FIELDS)}")
            if values["input"] is None or values["output"] is None:
                problems.append(f"{where}: input and output prices are required (USD per million tokens)")
            if bad:
                problems.append(f"{where}: {', '.join(bad)} must be a non-negative number (USD per million tokens)")
            if unknown or bad or values["input"] is None or values["output"] is None:
                continue
            prices.setdefault(provider, {})[model] = ModelPrice(
                **{k: float(v) for k, v in values.items() if v is not None}  # type: ignore[arg-type]
            )
    if problems:
        raise ConfigError(problems, source=source)
    return prices
