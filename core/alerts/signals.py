"""What each rule kind measures, per label set, from what the product already stores.

Traffic kinds (:mod:`core.alerts.traffic_signals`) read the rollup tiers, grouped in SQL: a few rows per label set;
state kinds (:mod:`core.alerts.state_signals`) read the instance registry and the latest snapshots
(:mod:`core.queries.keys`), probe streaks (:func:`core.probe.consecutive_probe_failures`) and channel health
(:func:`core.alerts.delivery.channel_health`). Nothing scans raw attempt rows. One :class:`SignalContext` per
evaluation caches shared queries, so twenty rules cost a handful of queries.
"""

from __future__ import annotations

from collections.abc import Callable

from core.alerts import state_signals, traffic_signals
from core.alerts.rules import Rule
from core.alerts.signal_context import Reading, SignalContext, gone, scope_text

__all__ = ["KIND_SIGNALS", "Reading", "SignalContext", "gone", "read", "scope_text"]

KIND_SIGNALS: dict[str, Callable[[Rule, SignalContext], list[Reading]]] = {
    "success_rate_below": traffic_signals.success_rate_below,
    "p95_latency_above": traffic_signals.p95_latency_above,
    "error_class_share_above": traffic_signals.error_class_share_above,
    "key_unhealthy": state_signals.key_unhealthy,
    "provider_all_keys_unavailable": state_signals.provider_all_keys_unavailable,
    "breaker_open": state_signals.breaker_open,
    "queue_depth_above": state_signals.queue_depth_above,
    "queue_wait_above": state_signals.queue_wait_above,
    "fallback_rate_above": traffic_signals.fallback_rate_above,
    "consecutive_probe_failures": state_signals.consecutive_probe_failures,
    "cost_per_hour_above": traffic_signals.cost_per_hour_above,
    "cost_per_day_above": traffic_signals.cost_per_day_above,
    "key_monthly_spend": traffic_signals.key_monthly_spend,
    "tokens_per_hour_above_baseline": traffic_signals.tokens_per_hour_above_baseline,
    "no_heartbeat": state_signals.no_heartbeat,
    "no_probes": state_signals.no_probes,
    "channel_failing": state_signals.channel_failing,
    "slo_burn_rate": traffic_signals.slo_burn_rate,
}


def read(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Every label set's reading for ``rule`` (the rule's static labels are added by the engine)."""
    return KIND_SIGNALS[rule.kind](rule, ctx)
