"""Alert rules: a rule with its kind's spec, how the CLI describes one, and the shipped defaults.

A rule's fields, comparisons and durations are :mod:`pulsegate.core.alerts.rule_fields`; what each kind measures and
compares is :mod:`pulsegate.core.alerts.kinds`. Reading a rules file's ``[[rules]]`` entries is
:mod:`pulsegate.core.alerts.rule_parsing`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pulsegate.core.alerts.kinds import KINDS
from pulsegate.core.alerts.rule_fields import KindSpec, RuleFields, format_duration

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Rule(RuleFields):
    """One alert rule, knowing its kind (the fields are :class:`~pulsegate.core.alerts.rule_fields.RuleFields`')."""

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind].spec

    @property
    def inhibits(self) -> bool:
        """Whether this rule's provider-wide alerts mute the per-key alerts of their provider (only a
        provider-scope rule can: its alerts name a provider and no key)."""
        if self.scope != "provider":
            return False
        return self.spec.inhibits if self.inhibit is None else self.inhibit


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
