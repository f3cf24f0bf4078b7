"""``GET /metrics``: a Prometheus collector that reads the store at scrape time.

Only cheap reads: the hour rollup tier (counters and the latency histogram), the minute tier for the last probe of
each key, the snapshot rows of the last three heartbeat intervals (queues, limiters, breakers, keys, recorders)
and the ``instances`` registry — never the raw attempt table. Nothing is cached between scrapes.

**Counters stay monotonic** because they sum the hour tier from the hour this worker started (rollup rows only
ever grow, and the start hour never moves). A restarted worker in a later hour starts lower: Prometheus treats
that as a counter reset, as it does for any restarted process. Several workers expose their own counters; use
one (the leader) or ``max by`` in queries.

A scrape whose store reads fail still answers: ``pulsegate_store_up 0`` and the worker's own metrics.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from pulsegate.core.clock import Clock, as_utc
from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.queries.keys import (
    STALE_AFTER_INTERVALS,
    current_queues,
    latest_instances,
    latest_key_views,
    worst_live_view,
)
from pulsegate.core.queries.probes import last_probes
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.instance_tables import INSTANCE_KINDS
from pulsegate.core.store.tables import instances, metric_rollups_1h
from pulsegate.jobs.service.worker_metrics import gauge, worker_metrics

log = logging.getLogger(__name__)

KEY_STATUSES = ("healthy", "degraded", "unhealthy", "cooldown", "disabled")
BREAKER_STATES = ("closed", "half_open", "open")
#: How far back the last probe of a key is looked for, and how long a silent instance stays in ``pulsegate_instances``.
LOOKBACK = timedelta(hours=24)
#: ``le`` bounds of the latency histogram, in seconds: the rollups' log buckets (√2 apart from 1 ms), then +Inf.
LATENCY_LE: tuple[str, ...] = (
    *(floatToGoString(bound / 1000.0) for bound in latency_buckets.UPPER_BOUNDS_MS),
    "+Inf",
)
SERIES = ("provider", "model", "key_label", "source")
TRAFFIC_LABELS = ["provider", "model", "key", "source"]
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write")
#: ``recorder.stats()`` key → (metric name suffix, help text).
RECORDER_GAUGES = {
    "spool_pending": ("spool_rows", "Attempt rows waiting in the disk spool for the database"),
    "buffered": ("buffered_rows", "Attempt rows not yet in the database (memory and spool)"),
}
RECORDER_COUNTERS = {
    "lost": ("lost_rows", "Attempt rows lost (buffer full or closed, database and spool unavailable)"),
    "written": ("written_rows", "Attempt rows written to the database"),
    "write_failures": ("write_failures", "Failed batch writes (their rows went to the spool)"),
}


def build_registry(
    engine: sa.Engine,
    clock: Clock,
    *,
    heartbeat_interval_s: float,
    status: Callable[[], Mapping[str, Any]] | None = None,
    started_at: datetime | None = None,
) -> CollectorRegistry:
    """A registry of its own (not the global one) holding a :class:`StoreCollector`: one per app."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StoreCollector(engine, clock, heartbeat_interval_s=heartbeat_interval_s, status=status, started_at=started_at)
    )
    return registry


class StoreCollector(Collector):
    """Every Pulsegate metric, read from the store (and the worker's ``status()``) on each scrape."""

    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock,
        *,
        heartbeat_interval_s: float,
        status: Callable[[], Mapping[str, Any]] | None = None,
        started_at: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.heartbeat_interval_s = heartbeat_interval_s
        self.status = status
        self.since = common.floor_time(started_at or clock.now(), 3600)

    def describe(self) -> list[Metric]:
        return []  # names are only known by reading the store: never read it at registration

    def collect(self) -> Iterator[Metric]:
        now = self.clock.now()
        status = self._status()
        up = 1.0
        families: list[Metric] = []
        try:
            families += self._traffic()
            families += self._last_probes(now)
            families += self._live_state(now, status)
            families += self._instances(now)
        except Exception as exc:  # a scrape answers with what it has rather than a 500
            up = 0.0
            families = [*self._recorders({}, status)]
            unexpected = not isinstance(exc, sa.exc.SQLAlchemyError)
            log.warning("metrics: the store could not be read (%s)", type(exc).__name__, exc_info=unexpected)
        yield from families
        yield gauge("pulsegate_store_up", "1 when this scrape could read the store, else 0", [], [([], up)])
        yield from worker_metrics(status)

    # --- counters and the latency histogram: the hour tier since the worker's start hour -----------------------

    def _traffic(self) -> list[Metric]:
        table = metric_rollups_1h
        statement = (
            sa.select(*(table.c[name] for name in SERIES), *common.summed(table))
            .where(table.c.bucket >= self.since)
            .group_by(*(table.c[name] for name in SERIES))
            .order_by(*(table.c[name] for name in SERIES))
        )
        columns, rows = common.fetch(self.engine, statement)
        calls = CounterMetricFamily(
            "pulsegate_calls",
            "Attempts (each retry or fallback counts) by outcome",
            labels=[*TRAFFIC_LABELS, "outcome"],
        )
        errors = CounterMetricFamily(
            "pulsegate_call_errors", "Failed attempts by error class", labels=[*TRAFFIC_LABELS, "error_class"]
        )
        fallbacks = CounterMetricFamily(
            "pulsegate_fallbacks", "Attempts made on a fallback provider", labels=TRAFFIC_LABELS
        )
        tokens = CounterMetricFamily("pulsegate_tokens", "Tokens by type", labels=[*TRAFFIC_LABELS, "type"])
        cost = CounterMetricFamily("pulsegate_cost_usd", "Cost in US dollars (priced attempts)", labels=TRAFFIC_LABELS)
        unpriced = CounterMetricFamily("pulsegate_unpriced_calls", "Attempts with no price", labels=TRAFFIC_LABELS)
        probes = CounterMetricFamily(
            "pulsegate_probes", "Probe attempts by outcome", labels=["provider", "model", "key", "outcome"]
        )
        duration = HistogramMetricFamily(
            "pulsegate_call_duration_seconds", "Attempt latency (rollup log buckets)", labels=TRAFFIC_LABELS
        )
        usage = HistogramMetricFamily(
            "gen_ai_client_token_usage",
            "OpenTelemetry GenAI token usage per attempt (sum and count only: rollups keep no per-call distribution)",
            labels=["gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type", "key", "source"],
        )
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            labels = [values["provider"], values["model"], values["key_label"], values["source"]]
            calls.add_metric([*labels, "success"], values["successes"])
            calls.add_metric([*labels, "error"], values["errors"])
            calls.add_metric([*labels, "cancelled"], values["cancelled"])
            for name in common.ERROR_COLUMNS:
                if values[name]:
                    errors.add_metric([*labels, name.removeprefix("err_")], values[name])
            fallbacks.add_metric(labels, values["fallbacks"])
            for kind in TOKEN_TYPES:
                tokens.add_metric([*labels, kind], values[f"{kind}_tokens"])
            cost.add_metric(labels, values["cost_usd"])
            unpriced.add_metric(labels, values["unpriced"])
            if values["source"] == "probe":
                probe_labels = [values["provider"], values["model"], values["key_label"]]
                probes.add_metric([*probe_labels, "success"], values["successes"])
                probes.add_metric([*probe_labels, "error"], values["errors"])
            cumulative, buckets = 0, []
            for le, name in zip(LATENCY_LE, latency_buckets.COLUMN_NAMES, strict=True):
                cumulative += int(values[name])
                buckets.append((le, cumulative))
            duration.add_metric(labels, buckets, sum_value=values["latency_sum_ms"] / 1000.0)
            for kind in ("input", "output"):
                usage.add_metric(
                    [values["provider"], values["model"], kind, values["key_label"], values["source"]],
                    [("+Inf", values["calls"])],
                    sum_value=values[f"{kind}_tokens"],
                )
        return [calls, errors, fallbacks, tokens, cost, unpriced, probes, duration, usage]

    # --- the newest probe of each key: the minute tier ------------------------------------------------------------

    def _last_probes(self, now: datetime) -> list[Metric]:
        probes = last_probes(self.engine, QueryFilter(now - LOOKBACK, now + timedelta(seconds=1)))
        ok = GaugeMetricFamily(
            "pulsegate_probe_last_ok",
            "1 when every probe in the key's newest probe minute passed",
            labels=["provider", "key"],
        )
        at = GaugeMetricFamily(
            "pulsegate_probe_last_timestamp_seconds",
            "Start of the key's newest probe minute",
            labels=["provider", "key"],
        )
        for (provider, key_label), probe in probes.items():
            ok.add_metric([provider, key_label], 1.0 if probe.ok else 0.0)
            at.add_metric([provider, key_label], probe.at.timestamp())
        return [ok, at]

    # --- the current state: snapshots of the live instances -------------------------------------------------------

    def _live_state(self, now: datetime, status: Mapping[str, Any]) -> list[Metric]:
        interval = self.heartbeat_interval_s
        recent = timedelta(seconds=STALE_AFTER_INTERVALS * interval)
        snapshots = latest_instances(self.engine, now, heartbeat_interval_s=interval, lookback=recent)
        live = snapshots[~snapshots["stale"].astype(bool)]
        keys = worst_live_view(latest_key_views(self.engine, now, lookback=recent), now, interval)
        families: list[Metric] = []

        queue = _gauge_family("pulsegate_queue_depth", "Calls waiting, summed over live instances")
        wait = _gauge_family("pulsegate_queue_oldest_wait_seconds", "Longest wait in any live instance's queue")
        used = _gauge_family("pulsegate_rate_limit_requests_used", "Requests admitted in the current limiter period")
        remaining = _gauge_family("pulsegate_rate_limit_requests_remaining", "Requests left in the current period")
        limit = _gauge_family("pulsegate_rate_limit_requests_limit", "Effective request limit per period")
        reporting = _gauge_family("pulsegate_reporting_instances", "Live instances reporting the provider")
        for row in current_queues(live).itertuples(index=False):
            labels = [row.provider]
            queue.add_metric(labels, float(row.queue_depth))
            reporting.add_metric(labels, float(row.instances))
            for family, value, scale in (
                (wait, row.oldest_wait_ms, 1000.0),
                (used, row.requests_used, 1.0),
                (remaining, row.requests_remaining, 1.0),
                (limit, row.requests_limit, 1.0),
            ):
                if value is not None and not pd.isna(value):
                    family.add_metric(labels, float(value) / scale)
        families += [queue, wait, used, remaining, limit, reporting]

        breaker = GaugeMetricFamily(
            "pulsegate_breaker_state", "Live instances whose breaker is in this state", labels=["provider", "state"]
        )
        for provider in sorted(set(live["provider"])):
            states = live.loc[live["provider"] == provider, "breaker_state"].fillna("closed")
            counts = states.value_counts()
            for state in (*BREAKER_STATES, *sorted(set(counts.index) - set(BREAKER_STATES))):
                breaker.add_metric([provider, str(state)], float(counts.get(state, 0)))
        families.append(breaker)

        score = GaugeMetricFamily(
            "pulsegate_key_health_score",
            "Key health 0-100: the lowest score any live instance reports",
            labels=["provider", "key"],
        )
        key_status = GaugeMetricFamily(
            "pulsegate_key_status",
            "1 for the key's worst status over live instances",
            labels=["provider", "key", "status"],
        )
        failures = GaugeMetricFamily(
            "pulsegate_key_consecutive_failures",
            "Most consecutive failures any live instance reports",
            labels=["provider", "key"],
        )
        cooldown = GaugeMetricFamily(
            "pulsegate_key_cooldown_remaining_seconds",
            "Seconds until the key's cooldown ends (0: none)",
            labels=["provider", "key"],
        )
        for row in keys.itertuples(index=False):
            labels = [row.provider, row.key_label]
            score.add_metric(labels, float(row.score))
            for name in KEY_STATUSES:
                key_status.add_metric([*labels, name], 1.0 if row.status == name else 0.0)
            failures.add_metric(labels, float(row.consecutive_failures))
            until = row.cooldown_until
            left = 0.0 if until is None or pd.isna(until) else max(0.0, (until - pd.Timestamp(now)).total_seconds())
            cooldown.add_metric(labels, left)
        families += [score, key_status, failures, cooldown]

        per_instance: dict[str, Mapping[str, Any]] = {}
        for row in live.itertuples(index=False):
            details = row.details if isinstance(row.details, Mapping) else {}
            if isinstance(details.get("recorder"), Mapping):
                per_instance[row.instance_id] = details["recorder"]
        families += self._recorders(per_instance, status)
        return families

    def _recorders(self, per_instance: dict[str, Mapping[str, Any]], status: Mapping[str, Any]) -> list[Metric]:
        """Each live instance's recorder (from its heartbeat), this worker's own from ``status()`` (fresher)."""
        own = status.get("recorder")
        if isinstance(own, Mapping):
            per_instance = {**per_instance, str(status.get("instance_id") or "worker"): own}
        families: list[Metric] = []
        for key, (name, documentation) in RECORDER_GAUGES.items():
            family = GaugeMetricFamily(f"pulsegate_recorder_{name}", documentation, labels=["instance"])
            families.append(_fill(family, per_instance, key))
        for key, (name, documentation) in RECORDER_COUNTERS.items():
            family = CounterMetricFamily(f"pulsegate_recorder_{name}", documentation, labels=["instance"])
            families.append(_fill(family, per_instance, key))
        return families

    # --- the instance registry -----------------------------------------------------------------------------------

    def _instances(self, now: datetime) -> list[Metric]:
        stale_before = now - timedelta(seconds=STALE_AFTER_INTERVALS * self.heartbeat_interval_s)
        t = instances  # one row per instance: small enough to fold here
        statement = sa.select(t.c.kind, t.c.last_seen).where(t.c.last_seen >= now - LOOKBACK)
        _, rows = common.fetch(self.engine, statement)
        counts: dict[tuple[str, str], int] = {}
        newest: dict[str, datetime] = {}
        for kind, last_seen in rows:
            if last_seen is None:
                continue
            last = as_utc(last_seen)
            state = "live" if last >= stale_before else "stale"
            counts[(kind, state)] = counts.get((kind, state), 0) + 1
            if kind not in newest or last > newest[kind]:
                newest[kind] = last
        family = GaugeMetricFamily(
            "pulsegate_instances", "Instances heard from in the last 24 h, live or stale", labels=["kind", "state"]
        )
        for kind in INSTANCE_KINDS:
            for state in ("live", "stale"):
                family.add_metric([kind, state], float(counts.get((kind, state), 0)))
        heartbeat = GaugeMetricFamily(
            "pulsegate_instance_last_heartbeat_timestamp_seconds",
            "Newest heartbeat of any instance of the kind",
            labels=["kind"],
        )
        for kind, last in sorted(newest.items()):
            heartbeat.add_metric([kind], last.timestamp())
        return [family, heartbeat]

    # --- this worker ----------------------------------------------------------------------------------------------

    def _status(self) -> Mapping[str, Any]:
        if self.status is None:
            return {}
        try:
            status = self.status()
        except Exception as exc:  # a broken status() must not break the scrape
            log.warning("metrics: status() failed (%s)", type(exc).__name__)
            return {}
        return status if isinstance(status, Mapping) else {}


def _gauge_family(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["provider"])


def _fill(family: Metric, per_instance: Mapping[str, Mapping[str, Any]], key: str) -> Metric:
    for instance_id, stats in sorted(per_instance.items()):
        value = stats.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            family.add_metric([instance_id], float(value))  # type: ignore[attr-defined]
    return family
