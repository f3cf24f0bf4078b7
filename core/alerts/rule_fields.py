"""What a rule is made of, below the kind registry: a rule's fields, a kind's spec, comparisons and durations.

A rule is data: the kind names the signal (:mod:`pulsegate.core.alerts.kinds` pairs each kind's spec with its reader),
the threshold and window say when it is breached, ``for`` how long it must stay breached before it fires,
``min_sample`` how many calls a window needs before a rate is trusted. Hysteresis keeps a firing alert from
flapping: it resolves only once the value is back past ``resolve_threshold`` (default: the threshold itself) and
has stayed there for ``keep_firing_for``. Ratios are percent (``95`` = 95 %), latencies milliseconds, waits and
silences seconds, money USD; durations accept seconds or ``"30s"``, ``"5m"``, ``"1h"``, ``"2d"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pulsegate.core.alerts.model import Severity
from pulsegate.core.alerts.wording import Quantity

SCOPES = ("global", "provider", "key", "model")
SOURCES = ("live", "probe", "all")


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
    total: Quantity | None = None  # a sum: no calls in the window is a value of 0 (in this quantity), not unknown


@dataclass(frozen=True, slots=True)
class RuleFields:
    """One alert rule's data, without its kind's spec: what a signal reader (:mod:`pulsegate.core.alerts.kinds`) is
    given. :class:`pulsegate.core.alerts.rules.Rule` adds the spec; the split keeps the readers below the kind registry,
    so the registry can pair each kind's spec with its reader without an import cycle. ``labels`` are added to every
    alert of the rule (routing and silences can match them)."""

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
        """The kind's spec: only :class:`~pulsegate.core.alerts.rules.Rule` knows the registry."""
        raise NotImplementedError

    @property
    def resolve_bound(self) -> float | None:
        """The value a firing alert must get back past to resolve: ``resolve_threshold``, else the threshold."""
        return self.threshold if self.resolve_threshold is None else self.resolve_threshold

    @property
    def display_title(self) -> str:
        return self.title or self.id.replace("_", " ")

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
