"""The alert kinds, each one :class:`Kind`: its spec (what it compares, its scopes and unit, the fields it takes)
paired with the reader that measures it — so a new kind is its reader and one row here.

Traffic kinds (:mod:`pulsegate.core.alerts.traffic_signals`) read the rollup tiers, grouped in SQL: a few rows per label
set; state kinds (:mod:`pulsegate.core.alerts.state_signals`) read the instance registry and the latest snapshots
(:mod:`pulsegate.core.queries.keys`), probe streaks and channel health. Nothing scans raw attempt rows. One
:class:`~pulsegate.core.alerts.signal_context.SignalContext` per evaluation caches shared queries, so twenty rules cost
a handful of queries. The order here is the order error messages list the kinds in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pulsegate.core.alerts import state_signals as state
from pulsegate.core.alerts import traffic_signals as traffic
from pulsegate.core.alerts.reading import Reading
from pulsegate.core.alerts.rule_fields import KindSpec, RuleFields
from pulsegate.core.alerts.signal_context import SignalContext
from pulsegate.core.alerts.wording import USD, WHOLE_PERCENT

Reader = Callable[[RuleFields, SignalContext], list[Reading]]


@dataclass(frozen=True, slots=True)
class Kind:
    """One alert kind: ``spec`` says how its rules are written and compared, ``read`` measures every label set
    (the rule's static labels are added by the evaluator)."""

    name: str
    spec: KindSpec
    read: Reader


_TRAFFIC = ("global", "provider", "key", "model")
_KINDS = (
    Kind("success_rate_below", KindSpec("below", _TRAFFIC, "%", windowed=True), traffic.success_rate_below),
    Kind("p95_latency_above", KindSpec("above", _TRAFFIC, "ms", windowed=True), traffic.p95_latency_above),
    Kind("error_class_share_above",
         KindSpec("above", _TRAFFIC, "%", windowed=True, extra=frozenset({"error_class"})),
         traffic.error_class_share_above),
    Kind("key_unhealthy", KindSpec("state", ("key",), "", extra=frozenset({"statuses"})), state.key_unhealthy),
    Kind("provider_all_keys_unavailable", KindSpec("state", ("provider",), "", inhibits=True),
         state.provider_all_keys_unavailable),
    Kind("breaker_open", KindSpec("at_least", ("provider",), "instances", inhibits=True), state.breaker_open),
    Kind("queue_depth_above", KindSpec("above", ("provider",), "requests"), state.queue_depth_above),
    Kind("queue_wait_above", KindSpec("above", ("provider",), "s"), state.queue_wait_above),
    Kind("fallback_rate_above", KindSpec("above", _TRAFFIC, "%", windowed=True), traffic.fallback_rate_above),
    Kind("consecutive_probe_failures", KindSpec("at_least", ("key",), "failures"), state.consecutive_probe_failures),
    Kind("cost_per_hour_above", KindSpec("above", _TRAFFIC, "USD", windowed=True, total=USD),
         traffic.cost_per_hour_above),
    Kind("cost_per_day_above", KindSpec("above", _TRAFFIC, "USD", windowed=True, total=USD),
         traffic.cost_per_day_above),
    Kind("key_monthly_spend",
         KindSpec("at_least", ("key",), "% of cap", extra=frozenset({"cap_usd", "key_caps", "enforce"}),
                  total=WHOLE_PERCENT),
         traffic.key_monthly_spend),
    Kind("tokens_per_hour_above_baseline",
         KindSpec("above", _TRAFFIC, "× baseline", windowed=True, extra=frozenset({"baseline"})),
         traffic.tokens_per_hour_above_baseline),
    Kind("no_heartbeat", KindSpec("above", ("global",), "s", extra=frozenset({"instance_kind"})), state.no_heartbeat),
    Kind("no_probes", KindSpec("above", ("provider",), "s"), state.no_probes),
    Kind("channel_failing", KindSpec("state", ("global",), ""), state.channel_failing),
    Kind("slo_burn_rate",
         KindSpec("above", _TRAFFIC, "× budget", windowed=True, extra=frozenset({"objective", "short_window"})),
         traffic.slo_burn_rate),
)  # fmt: skip

#: Every kind by name: the one registry rules, rule parsing and the evaluator look kinds up in.
KINDS: dict[str, Kind] = {kind.name: kind for kind in _KINDS}


def read(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """Every label set's reading for ``rule``."""
    return KINDS[rule.kind].read(rule, ctx)
