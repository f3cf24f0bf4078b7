"""Alert rules: what each kind measures and compares, and the shipped defaults.

A rule is data: the kind names the signal (:mod:`core.alerts.signals` computes it per label set), the threshold
and window say when it is breached, ``for`` how long it must stay breached before it fires, ``min_sample`` how
many calls a window needs before a rate is trusted. Hysteresis keeps a firing alert from flapping: it resolves
only once the value is back past ``resolve_threshold`` (default: the threshold itself) and has stayed there for
``keep_firing_for``. Ratios are percent (``95`` = 95 %), latencies milliseconds, waits and silences seconds, money
USD; durations accept seconds or ``"30s"``, ``"5m"``, ``"1h"``, ``"2d"``. Reading a rules file's ``[[rules]]``
entries is :mod:`core.alerts.rule_parsing`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.alerts.model import Severity

SCOPES = ("global", "provider", "key", "model")
SOURCES = ("live", "probe", "all")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What a kind needs: its comparison (``below``, ``above`` or ``at_least``; ``state`` has no threshold), the
    scopes it can be grouped by, the unit of its threshold, and the kind-specific fields it accepts."""

    compare: str  # below | above | at_least | state
    scopes: tuple[str, ...]
    unit: str
    windowed: bool = False
    extra: frozenset[str] = frozenset()
    inhibits: bool = False  # a provider-wide alert of this kind mutes that provider's per-key alerts


_TRAFFIC = ("global", "provider", "key", "model")
KINDS: dict[str, KindSpec] = {
    "success_rate_below": KindSpec("below", _TRAFFIC, "%", windowed=True),
    "p95_latency_above": KindSpec("above", _TRAFFIC, "ms", windowed=True),
    "error_class_share_above": KindSpec("above", _TRAFFIC, "%", windowed=True, extra=frozenset({"error_class"})),
    "key_unhealthy": KindSpec("state", ("key",), "", extra=frozenset({"statuses"})),
    "provider_all_keys_unavailable": KindSpec("state", ("provider",), "", inhibits=True),
    "breaker_open": KindSpec("at_least", ("provider",), "instances", inhibits=True),
    "queue_depth_above": KindSpec("above", ("provider",), "requests"),
    "queue_wait_above": KindSpec("above", ("provider",), "s"),
    "fallback_rate_above": KindSpec("above", _TRAFFIC, "%", windowed=True),
    "consecutive_probe_failures": KindSpec("at_least", ("key",), "failures"),
    "cost_per_hour_above": KindSpec("above", _TRAFFIC, "USD", windowed=True),
    "cost_per_day_above": KindSpec("above", _TRAFFIC, "USD", windowed=True),
    "key_monthly_spend": KindSpec(
        "at_least", ("key",), "% of cap", extra=frozenset({"cap_usd", "key_caps", "enforce"})
    ),
    "tokens_per_hour_above_baseline": KindSpec(
        "above", _TRAFFIC, "× baseline", windowed=True, extra=frozenset({"baseline"})
    ),
    "no_heartbeat": KindSpec("above", ("global",), "s", extra=frozenset({"instance_kind"})),
    "no_probes": KindSpec("above", ("provider",), "s"),
    "channel_failing": KindSpec("state", ("global",), ""),
    "slo_burn_rate": KindSpec(
        "above", ("global", "provider", "key", "model"), "× budget", windowed=True,
        extra=frozenset({"objective", "short_window"}),
    ),
}  # fmt: skip

#: Key statuses that count as "unavailable" for provider_all_keys_unavailable (healthy / degraded still serve).
UNAVAILABLE_STATUSES = ("unhealthy", "cooldown", "disabled")


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule. ``labels`` are added to every alert of the rule (routing and silences can match them)."""

    id: str
    kind: str
    threshold: float | None = None
    window_s: float | None = None
    for_s: float = 0.0
    min_sample: int = 0
    severity: Severity = "warning"
    scope: str = "provider"
    provider: str | None = None  # only this provider's label sets
    key_label: str | None = None  # only this key's label sets
    source: str = "live"  # traffic kinds: live calls, probes, or all
    labels: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    enabled: bool = True
    # kind-specific
    error_class: str | None = None
    statuses: tuple[str, ...] = ()
    objective: float | None = None  # slo_burn_rate: success objective, percent (99 = 99 %)
    short_window_s: float | None = None  # slo_burn_rate: the short window (default window / 12)
    baseline_s: float | None = None  # tokens_per_hour_above_baseline: trailing baseline (default 7 d)
    cap_usd: float | None = None  # key_monthly_spend: monthly cap per key
    key_caps: Mapping[str, float] = field(default_factory=dict)  # key_monthly_spend: cap per key label
    enforce: bool = False  # key_monthly_spend: disable the key at the cap, enable it when the month rolls over
    instance_kind: str | None = None  # no_heartbeat: "worker" or "client" (None: each kind)
    # hysteresis and inhibition
    resolve_threshold: float | None = None  # a firing alert resolves only once the value is back past this
    keep_firing_for_s: float = 0.0  # ... and has stayed back for this long (Prometheus' keep_firing_for)
    inhibit: bool | None = None  # TOML ``inhibits``; None: the kind's default (see :attr:`inhibits`)

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def inhibits(self) -> bool:
        """Whether this rule's provider-wide alerts mute the per-key alerts of their provider (only a
        provider-scope rule can: its alerts name a provider and no key)."""
        if self.scope != "provider":
            return False
        return self.spec.inhibits if self.inhibit is None else self.inhibit

    @property
    def resolve_bound(self) -> float | None:
        """The value a firing alert must get back past to resolve: ``resolve_threshold``, else the threshold."""
        return self.threshold if self.resolve_threshold is None else self.resolve_threshold

    @property
    def display_title(self) -> str:
        return self.title or self.id.replace("_", " ")

    def breached(self, value: float | None) -> bool:
        """Whether ``value`` crosses the threshold (state kinds decide in the signal, not here)."""
        return crosses(self.spec.compare, value, self.threshold)

    def holding(self, value: float | None) -> bool:
        """Whether a firing alert at ``value`` stays firing: the value has not got back past the resolve bound."""
        return crosses(self.spec.compare, value, self.resolve_bound)

    def cap_for(self, key_label: str) -> float | None:
        return self.key_caps.get(key_label, self.cap_usd)


#: The comparison each kind fires on, and its negation (what a resolved message states).
FIRING_OPERATOR = {"below": "<", "above": ">", "at_least": "≥"}
CLEAR_OPERATOR = {"below": "≥", "above": "≤", "at_least": "<"}


def crosses(compare: str, value: float | None, bound: float | None) -> bool:
    """``value`` is on the firing side of ``bound`` for a ``compare`` kind (never for a missing value or bound)."""
    if value is None or math.isnan(value) or bound is None:
        return False
    if compare == "below":
        return value < bound
    if compare == "at_least":
        return value >= bound
    if compare == "above":
        return value > bound
    return False


# --- durations ----------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or ``"90s"``, ``"5m"``, ``"1h"``, ``"7d"``; ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 300 or '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 300 or '5m', got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a duration of 0 or more, got {value!r}")
    return seconds


def format_duration(seconds: float | None) -> str:
    """``300`` → ``5m``, ``5400`` → ``90m``, ``86400`` → ``1d`` (the largest unit that divides evenly)."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def describe_rule(rule: Rule) -> dict[str, Any]:
    """A rule as the CLI and README print it."""
    return {
        "id": rule.id,
        "kind": rule.kind,
        "threshold": rule.threshold,
        "resolve_threshold": rule.resolve_threshold,
        "unit": rule.spec.unit,
        "window": format_duration(rule.window_s) if rule.window_s else None,
        "for": format_duration(rule.for_s) if rule.for_s else "0",
        "keep_firing_for": format_duration(rule.keep_firing_for_s) if rule.keep_firing_for_s else "0",
        "inhibits": rule.inhibits,
        "min_sample": rule.min_sample,
        "severity": rule.severity,
        "scope": rule.scope,
        "source": rule.source,
        "title": rule.display_title,
    }


# --- defaults -----------------------------------------------------------------------------------------------------


def _r(rule_id: str, kind: str, **values: Any) -> Rule:
    return Rule(id=rule_id, kind=kind, **values)


#: The rules in force without a rules file (the README's table lists them). Budgets and caps are starting points:
#: set them to the installation's numbers in ALERT_RULES_FILE. Every rule has hysteresis: a resolve threshold on
#: the good side of its threshold (none where the value cannot hover: month-to-date spend only grows) and a
#: ``keep_firing_for`` about as long as its ``for`` (longer where the signal is coarse: a probe every 5 minutes).
#: The provider-wide rules that name a cause on the provider's side (overloaded, breaker open, no key available)
#: inhibit that provider's per-key alerts; symptoms (success rate, error budget) do not — a revoked key lowers the
#: provider's success rate, and the key's own alert is the one that says why.
DEFAULT_RULES: tuple[Rule, ...] = (
    _r("success_rate_low", "success_rate_below", threshold=95.0, resolve_threshold=97.0, window_s=900, for_s=300,
       keep_firing_for_s=300, min_sample=20, severity="critical", title="Success rate low"),
    _r("latency_p95_high", "p95_latency_above", threshold=30_000.0, resolve_threshold=25_000.0, window_s=900,
       for_s=600, keep_firing_for_s=300, min_sample=20, title="p95 latency high"),
    _r("rate_limited_share_high", "error_class_share_above", error_class="rate_limited", threshold=5.0,
       resolve_threshold=2.0, window_s=600, for_s=300, keep_firing_for_s=300, min_sample=20,
       title="Rate-limited share high"),
    _r("overloaded_share_high", "error_class_share_above", error_class="overloaded", threshold=10.0,
       resolve_threshold=5.0, window_s=600, for_s=300, keep_firing_for_s=300, min_sample=20, inhibit=True,
       title="Overloaded share high"),
    _r("key_unhealthy", "key_unhealthy", statuses=("unhealthy", "disabled"), for_s=120, keep_firing_for_s=120,
       scope="key", title="Key unhealthy or disabled"),
    _r("provider_keys_unavailable", "provider_all_keys_unavailable", for_s=60, keep_firing_for_s=60,
       severity="critical", title="Every key of the provider unavailable"),
    _r("breaker_open", "breaker_open", threshold=1.0, for_s=60, keep_firing_for_s=120, severity="critical",
       title="Circuit breaker open"),
    _r("queue_depth_high", "queue_depth_above", threshold=100.0, resolve_threshold=50.0, for_s=300,
       keep_firing_for_s=300, title="Queue depth high"),
    _r("queue_wait_high", "queue_wait_above", threshold=60.0, resolve_threshold=30.0, for_s=300,
       keep_firing_for_s=300, title="Oldest queued request waiting long"),
    _r("fallback_rate_high", "fallback_rate_above", threshold=10.0, resolve_threshold=5.0, window_s=900, for_s=300,
       keep_firing_for_s=300, min_sample=20, title="Fallback rate high"),
    _r("probe_failures", "consecutive_probe_failures", threshold=3.0, resolve_threshold=1.0, keep_firing_for_s=600,
       scope="key", severity="critical", title="Key failing its probes"),
    _r("cost_per_hour_high", "cost_per_hour_above", threshold=10.0, resolve_threshold=8.0, window_s=3600,
       keep_firing_for_s=900, scope="global", source="all", title="Spend per hour above budget"),
    _r("cost_per_day_high", "cost_per_day_above", threshold=100.0, resolve_threshold=90.0, window_s=86400,
       keep_firing_for_s=3600, scope="global", source="all", title="Spend per day above budget"),
    _r("key_monthly_spend_warning", "key_monthly_spend", threshold=80.0, cap_usd=100.0, scope="key", source="all",
       title="Key month-to-date spend at 80 % of its cap"),
    _r("key_monthly_spend_cap", "key_monthly_spend", threshold=100.0, cap_usd=100.0, scope="key", source="all",
       severity="critical", title="Key month-to-date spend reached its cap"),
    _r("tokens_per_hour_spike", "tokens_per_hour_above_baseline", threshold=3.0, resolve_threshold=2.0,
       window_s=3600, keep_firing_for_s=900, baseline_s=7 * 86400, min_sample=20, scope="global", source="all",
       title="Tokens per hour above baseline"),
    _r("worker_heartbeat_missing", "no_heartbeat", instance_kind="worker", threshold=90.0, resolve_threshold=30.0,
       keep_firing_for_s=120, scope="global", severity="critical", title="No heartbeat from any worker"),
    _r("client_heartbeat_missing", "no_heartbeat", instance_kind="client", threshold=300.0, resolve_threshold=60.0,
       keep_firing_for_s=120, scope="global", title="No heartbeat from any client"),
    _r("probes_missing", "no_probes", threshold=None, keep_firing_for_s=300, title="No probe results"),
    _r("channel_failing", "channel_failing", scope="global", keep_firing_for_s=300, severity="critical",
       title="Notification channel failing"),
    _r("slo_burn_fast", "slo_burn_rate", objective=99.0, threshold=14.4, window_s=3600, short_window_s=300,
       keep_firing_for_s=300, min_sample=20, severity="critical", title="Error budget burning fast (1h/5m)"),
    _r("slo_burn_slow", "slo_burn_rate", objective=99.0, threshold=6.0, window_s=6 * 3600, short_window_s=1800,
       keep_firing_for_s=900, min_sample=20, severity="critical", title="Error budget burning (6h/30m)"),
)  # fmt: skip
