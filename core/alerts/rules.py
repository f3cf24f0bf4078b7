"""Alert rules: what each kind measures, the shipped defaults, and parsing a TOML ``[[rules]]`` entry.

A rule is data: the kind names the signal (:mod:`core.alerts.signals` computes it per label set), the threshold
and window say when it is breached, ``for`` how long it must stay breached before it fires, ``min_sample`` how
many calls a window needs before a rate is trusted. Ratios are percent (``95`` = 95 %), latencies milliseconds,
waits and silences seconds, money USD; durations accept seconds or ``"30s"``, ``"5m"``, ``"1h"``, ``"2d"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from core.alerts.model import SEVERITIES, Severity
from core.errors import ErrorClass
from core.store.snapshot_rollups import KEY_STATUS_RANK
from core.store.tables import PROVIDERS

SCOPES = ("global", "provider", "key", "model")
SOURCES = ("live", "probe", "all")
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What a kind needs: its comparison (``below``, ``above`` or ``at_least``; ``state`` has no threshold), the
    scopes it can be grouped by, the unit of its threshold, and the kind-specific fields it accepts."""

    compare: str
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

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def inhibits(self) -> bool:
        return self.spec.inhibits

    @property
    def display_title(self) -> str:
        return self.title or self.id.replace("_", " ")

    def breached(self, value: float | None) -> bool:
        """Whether ``value`` crosses the threshold (state kinds decide in the signal, not here)."""
        if value is None or math.isnan(value) or self.threshold is None:
            return False
        compare = self.spec.compare
        if compare == "below":
            return value < self.threshold
        if compare == "at_least":
            return value >= self.threshold
        return value > self.threshold

    def cap_for(self, key_label: str) -> float | None:
        return self.key_caps.get(key_label, self.cap_usd)


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


# --- defaults -----------------------------------------------------------------------------------------------------


def _r(rule_id: str, kind: str, **values: Any) -> Rule:
    return Rule(id=rule_id, kind=kind, **values)


#: The rules in force without a rules file (the README's table lists them). Budgets and caps are starting points:
#: set them to the installation's numbers in ALERT_RULES_FILE.
DEFAULT_RULES: tuple[Rule, ...] = (
    _r("success_rate_low", "success_rate_below", threshold=95.0, window_s=900, for_s=300, min_sample=20,
       severity="critical", title="Success rate low"),
    _r("latency_p95_high", "p95_latency_above", threshold=30_000.0, window_s=900, for_s=600, min_sample=20,
       title="p95 latency high"),
    _r("rate_limited_share_high", "error_class_share_above", error_class="rate_limited", threshold=5.0,
       window_s=600, for_s=300, min_sample=20, title="Rate-limited share high"),
    _r("overloaded_share_high", "error_class_share_above", error_class="overloaded", threshold=10.0,
       window_s=600, for_s=300, min_sample=20, title="Overloaded share high"),
    _r("key_unhealthy", "key_unhealthy", statuses=("unhealthy", "disabled"), for_s=120, scope="key",
       title="Key unhealthy or disabled"),
    _r("provider_keys_unavailable", "provider_all_keys_unavailable", for_s=60, severity="critical",
       title="Every key of the provider unavailable"),
    _r("breaker_open", "breaker_open", threshold=1.0, for_s=60, severity="critical", title="Circuit breaker open"),
    _r("queue_depth_high", "queue_depth_above", threshold=100.0, for_s=300, title="Queue depth high"),
    _r("queue_wait_high", "queue_wait_above", threshold=60.0, for_s=300, title="Oldest queued request waiting long"),
    _r("fallback_rate_high", "fallback_rate_above", threshold=10.0, window_s=900, for_s=300, min_sample=20,
       title="Fallback rate high"),
    _r("probe_failures", "consecutive_probe_failures", threshold=3.0, scope="key", severity="critical",
       title="Key failing its probes"),
    _r("cost_per_hour_high", "cost_per_hour_above", threshold=10.0, window_s=3600, scope="global", source="all",
       title="Spend per hour above budget"),
    _r("cost_per_day_high", "cost_per_day_above", threshold=100.0, window_s=86400, scope="global", source="all",
       title="Spend per day above budget"),
    _r("key_monthly_spend_warning", "key_monthly_spend", threshold=80.0, cap_usd=100.0, scope="key", source="all",
       title="Key month-to-date spend at 80 % of its cap"),
    _r("key_monthly_spend_cap", "key_monthly_spend", threshold=100.0, cap_usd=100.0, scope="key", source="all",
       severity="critical", title="Key month-to-date spend reached its cap"),
    _r("tokens_per_hour_spike", "tokens_per_hour_above_baseline", threshold=3.0, window_s=3600,
       baseline_s=7 * 86400, min_sample=20, scope="global", source="all", title="Tokens per hour above baseline"),
    _r("worker_heartbeat_missing", "no_heartbeat", instance_kind="worker", threshold=90.0, scope="global",
       severity="critical", title="No heartbeat from any worker"),
    _r("client_heartbeat_missing", "no_heartbeat", instance_kind="client", threshold=300.0, scope="global",
       title="No heartbeat from any client"),
    _r("probes_missing", "no_probes", threshold=None, title="No probe results"),
    _r("channel_failing", "channel_failing", scope="global", severity="critical",
       title="Notification channel failing"),
    _r("slo_burn_fast", "slo_burn_rate", objective=99.0, threshold=14.4, window_s=3600, short_window_s=300,
       min_sample=20, severity="critical", title="Error budget burning fast (1h/5m)"),
    _r("slo_burn_slow", "slo_burn_rate", objective=99.0, threshold=6.0, window_s=6 * 3600, short_window_s=1800,
       min_sample=20, severity="critical", title="Error budget burning (6h/30m)"),
)  # fmt: skip

# --- parsing a [[rules]] entry -----------------------------------------------------------------------------------

#: TOML field → Rule attribute (durations are converted); the rest map by name.
_DURATION_FIELDS = {"window": "window_s", "for": "for_s", "short_window": "short_window_s", "baseline": "baseline_s"}
_COMMON_FIELDS = frozenset(
    {
        "id",
        "kind",
        "threshold",
        "window",
        "for",
        "min_sample",
        "severity",
        "scope",
        "provider",
        "key_label",
        "source",
        "labels",
        "title",
        "enabled",
    }
)
_RULE_ATTRS = frozenset(f.name for f in fields(Rule))


class RuleProblem(ValueError):
    """One problem in one rule entry: ``field`` names the TOML field."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}")
        self.field = field_name
        self.problem = problem


def _number(name: str, value: object, *, minimum: float | None = None, above: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleProblem(name, f"expected a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise RuleProblem(name, f"expected a number ≥ {minimum:g}, got {value!r}")
    if above is not None and value <= above:
        raise RuleProblem(name, f"expected a number > {above:g}, got {value!r}")
    return float(value)


def _string(name: str, value: object, allowed: tuple[str, ...] | None = None, max_length: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleProblem(name, f"expected a non-empty string, got {value!r}")
    if allowed is not None and value not in allowed:
        raise RuleProblem(name, f"expected one of {', '.join(allowed)}, got {value!r}")
    if len(value) > max_length:
        raise RuleProblem(name, f"at most {max_length} characters, got {len(value)}")
    return value


def _convert(name: str, value: object) -> tuple[str, Any]:
    """One TOML field → (Rule attribute, checked value)."""
    if name in _DURATION_FIELDS:
        try:
            return _DURATION_FIELDS[name], parse_duration(value)
        except ValueError as exc:
            raise RuleProblem(name, str(exc)) from None
    if name in ("threshold", "objective", "cap_usd"):
        return name, _number(name, value)
    if name == "min_sample":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RuleProblem(name, f"expected a whole number ≥ 0, got {value!r}")
        return name, value
    if name == "severity":
        return name, _string(name, value, SEVERITIES)
    if name == "scope":
        return name, _string(name, value, SCOPES)
    if name == "source":
        return name, _string(name, value, SOURCES)
    if name == "provider":
        return name, _string(name, value, PROVIDERS)
    if name in ("key_label", "title"):
        return name, _string(name, value, max_length=64 if name == "key_label" else 120)
    if name in ("enabled", "enforce"):
        if not isinstance(value, bool):
            raise RuleProblem(name, f"expected true or false, got {value!r}")
        return name, value
    if name == "error_class":
        return name, _string(name, value, tuple(e.value for e in ErrorClass))
    if name == "instance_kind":
        return name, _string(name, value, ("worker", "client"))
    if name == "statuses":
        if not isinstance(value, list) or not value:
            raise RuleProblem(name, f"expected a non-empty list of key statuses, got {value!r}")
        return name, tuple(_string(name, v, tuple(KEY_STATUS_RANK)) for v in value)
    if name == "labels":
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k and len(k) <= 64 and len(v) <= 128 for k, v in value.items()
        ):
            raise RuleProblem(name, 'expected a table of short strings, e.g. { team = "platform" }')
        reserved = sorted(set(value) & {"rule_id", "provider", "key_label", "model", "channel", "instance_kind"})
        if reserved:
            raise RuleProblem(name, f"{', '.join(reserved)} is set by the rule's scope; choose another label name")
        return name, dict(value)
    if name == "key_caps":
        if not isinstance(value, Mapping) or not value:
            raise RuleProblem(name, "expected a table of key label → USD, e.g. { Primary = 50.0 }")
        return name, {str(k): _number(f"{name}.{k}", v, above=0) for k, v in value.items()}
    raise RuleProblem(name, "unknown field")


def rule_from_toml(entry: Mapping[str, Any], defaults: Mapping[str, Rule]) -> Rule:
    """A rule from one ``[[rules]]`` table: a default's id overrides that default's given fields, a new id needs
    ``kind``. Raises :class:`RuleProblem` naming the field."""
    if "id" not in entry:
        raise RuleProblem("id", "is required (a default's id to change it, or a new one with a kind)")
    rule_id = _string("id", entry["id"])
    if not ID_PATTERN.match(rule_id):
        raise RuleProblem("id", f"use lower-case letters, digits, '_', '-' and '.', got {rule_id!r}")
    base = defaults.get(rule_id)
    if base is None:
        if "kind" not in entry:
            raise RuleProblem("kind", f"is required for a new rule; one of {', '.join(KINDS)}")
        kind = _string("kind", entry["kind"], tuple(KINDS))
        scopes = KINDS[kind].scopes
        base = Rule(id=rule_id, kind=kind, scope="provider" if "provider" in scopes else scopes[0])
    elif "kind" in entry and entry["kind"] != base.kind:
        raise RuleProblem("kind", f"cannot change a default rule's kind ({base.kind}); give the new rule another id")
    spec = KINDS[base.kind]
    allowed = _COMMON_FIELDS | spec.extra
    changes: dict[str, Any] = {}
    for name, value in entry.items():
        if name in ("id", "kind"):
            continue
        if name not in allowed:
            if name in _COMMON_FIELDS | frozenset().union(*(s.extra for s in KINDS.values())):
                raise RuleProblem(name, f"does not apply to kind {base.kind}")
            raise RuleProblem(name, "unknown field")
        attr, converted = _convert(name, value)
        changes[attr] = converted
    assert set(changes) <= _RULE_ATTRS
    rule = replace(base, **changes)
    check_rule(rule)
    return rule


def check_rule(rule: Rule) -> None:
    """Cross-field checks (also run on the defaults by the tests)."""
    spec = rule.spec
    if rule.scope not in spec.scopes:
        raise RuleProblem("scope", f"kind {rule.kind} supports {', '.join(spec.scopes)}, got {rule.scope!r}")
    if spec.compare != "state" and rule.kind != "no_probes" and rule.threshold is None:
        raise RuleProblem("threshold", f"is required for kind {rule.kind} (in {spec.unit})")
    if spec.windowed and not rule.window_s:
        raise RuleProblem("window", f"is required for kind {rule.kind}")
    percent_kinds = ("success_rate_below", "error_class_share_above", "fallback_rate_above")
    if rule.kind in percent_kinds and rule.threshold is not None and not 0 <= rule.threshold <= 100:
        raise RuleProblem("threshold", f"is a percentage 0–100, got {rule.threshold:g}")
    if rule.kind == "error_class_share_above" and rule.error_class is None:
        raise RuleProblem("error_class", "is required for kind error_class_share_above")
    if rule.kind == "slo_burn_rate":
        if rule.objective is None or not 0 < rule.objective < 100:
            raise RuleProblem("objective", "is required: the success objective in percent, e.g. 99.9")
        if rule.short_window_s is not None and rule.window_s and rule.short_window_s >= rule.window_s:
            raise RuleProblem("short_window", "must be shorter than window")
    if rule.kind == "key_monthly_spend" and rule.cap_usd is None and not rule.key_caps:
        raise RuleProblem("cap_usd", "is required (or key_caps): the monthly cap per key in USD")
    if rule.cap_usd is not None and rule.cap_usd <= 0:
        raise RuleProblem("cap_usd", f"expected a number > 0, got {rule.cap_usd:g}")
    if rule.threshold is not None and rule.threshold < 0:
        raise RuleProblem("threshold", f"expected a number ≥ 0, got {rule.threshold:g}")
