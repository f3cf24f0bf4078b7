"""The scenario: what the emulator does, as plain frozen data with the documented defaults.

A scenario comes from a TOML/JSON file (`scenario_parser.load_scenario`), from a dict
(`scenario_parser.parse_scenario`, used by the admin API) or from code. This module is only the model: reading and
validation live in scenario_parser, which imports it (never the other way round).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

BEHAVIOURS = ("ok", "invalid", "quota", "billing", "permission")
LATENCY_KINDS = ("none", "fixed", "uniform", "lognormal")
PROVIDERS = ("anthropic", "openai")
ROUTES = (
    "anthropic.messages",
    "anthropic.count_tokens",
    "anthropic.models",
    "openai.chat_completions",
    "openai.models",
)
ERROR_STATUSES = (400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529)
STREAM_FAULTS = ("truncate_stream", "stall_stream", "stream_error")
FAULT_KINDS = (
    "error",
    "rate_limit",
    "server_error",
    "overloaded",
    "unavailable",
    "gateway_timeout",
    "stall",
    "drip_body",
    "reset",
    "malformed_json",
    *STREAM_FAULTS,
)

DEFAULT_ANTHROPIC_MODELS: tuple[dict[str, Any], ...] = (
    {"type": "model", "id": "claude-opus-4-8", "display_name": "Claude Opus 4.8", "created_at": "2026-05-28T00:00:00Z"},
    {
        "type": "model",
        "id": "claude-sonnet-4-6",
        "display_name": "Claude Sonnet 4.6",
        "created_at": "2026-02-17T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-haiku-4-5",
        "display_name": "Claude Haiku 4.5",
        "created_at": "2025-10-15T00:00:00Z",
    },
    {
        "type": "model",
        "id": "claude-haiku-4-5-20251001",
        "display_name": "Claude Haiku 4.5",
        "created_at": "2025-10-15T00:00:00Z",
    },
)
DEFAULT_OPENAI_MODELS: tuple[dict[str, Any], ...] = (
    {"id": "gpt-4.1", "created": 1744316542, "owned_by": "system", "object": "model"},
    {"id": "gpt-4.1-mini", "created": 1744318173, "owned_by": "system", "object": "model"},
    {"id": "gpt-4.1-nano", "created": 1744321707, "owned_by": "system", "object": "model"},
    {"id": "gpt-4o-mini", "created": 1721172741, "owned_by": "system", "object": "model"},
    {"id": "gpt-5", "created": 1754425777, "owned_by": "system", "object": "model"},
)


@dataclass(frozen=True)
class KeyPolicy:
    """How one API key behaves: a fixed outcome and its budgets (limits per `period` seconds)."""

    behaviour: str = "ok"
    requests: int = 100_000
    tokens: int = 100_000_000
    input_tokens: int | None = None
    output_tokens: int | None = None
    period: float = 60.0


@dataclass(frozen=True)
class Latency:
    """Added delays. `kind` picks the distribution of the delay before the response head."""

    kind: str = "none"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    median_ms: float = 0.0
    sigma: float = 0.5
    ttft_ms: float = 0.0
    per_token_ms: float = 0.0


@dataclass(frozen=True)
class ReplyConfig:
    """What the generated answer looks like."""

    text: str | None = None
    extra_words: int = 0
    tool_use: bool = False


@dataclass(frozen=True)
class Fault:
    """One injection rule: which requests it matches, how often it fires and what it does."""

    kind: str
    rate: float = 1.0
    count: int | None = None
    provider: str | None = None
    route: str | None = None
    key: str | None = None
    model: str | None = None
    stream: bool | None = None
    status: int | None = None
    retry_after: int | None = None
    message: str | None = None
    seconds: float = 0.0
    after_events: int = 2


@dataclass(frozen=True)
class Models:
    """The models each provider lists; entries are the providers' own JSON objects."""

    anthropic: tuple[dict[str, Any], ...] = DEFAULT_ANTHROPIC_MODELS
    openai: tuple[dict[str, Any], ...] = DEFAULT_OPENAI_MODELS


@dataclass(frozen=True)
class Scenario:
    """Everything the emulator can be told. The defaults give a fast, permissive server."""

    seed: int = 0
    clock: str = "real"
    max_body_bytes: int = 32 * 1024 * 1024
    unknown_models: tuple[str, ...] = ()
    reasoning_models: tuple[str, ...] = ("o1", "o3", "o4", "gpt-5")
    anthropic_context_window: int = 200_000
    openai_context_window: int = 128_000
    models: Models = field(default_factory=Models)
    reply: ReplyConfig = field(default_factory=ReplyConfig)
    latency: Latency = field(default_factory=Latency)
    defaults: KeyPolicy = field(default_factory=KeyPolicy)
    keys: Mapping[str, KeyPolicy] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()

    def policy_for(self, key: str) -> KeyPolicy:
        """The key's own policy, else the scenario-wide default."""
        return self.keys.get(key, self.defaults)

    def with_fault(self, fault: Fault) -> Scenario:
        """A copy with one more fault rule appended."""
        return replace(self, faults=(*self.faults, fault))

    def to_dict(self) -> dict[str, Any]:
        """The same shape `scenario_parser.parse_scenario` accepts (so GET then PUT round-trips)."""
        out: dict[str, Any] = {
            "seed": self.seed,
            "clock": self.clock,
            "max_body_bytes": self.max_body_bytes,
            "unknown_models": list(self.unknown_models),
            "reasoning_models": list(self.reasoning_models),
            "context_window": {
                "anthropic": self.anthropic_context_window,
                "openai": self.openai_context_window,
            },
            "models": {"anthropic": list(self.models.anthropic), "openai": list(self.models.openai)},
            "reply": _drop_none(asdict(self.reply)),
            "latency": asdict(self.latency),
            "defaults": _drop_none(asdict(self.defaults)),
            "keys": {k: _drop_none(asdict(v)) for k, v in self.keys.items()},
            "faults": [_drop_none(asdict(f)) for f in self.faults],
        }
        return out


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
