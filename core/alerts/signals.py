"""What each rule kind measures, per label set, from what the product already stores.

Traffic kinds read the rollup tiers (minutes for short windows, whole hours plus minute edges for long ones,
grouped in SQL: a few rows per label set); state kinds read the instance registry and the latest snapshots
(:mod:`core.queries.keys`), probe streaks come from :func:`core.probe.consecutive_probe_failures`, channel health
from :func:`core.alerts.delivery.channel_health`. Nothing here scans raw attempt rows. One
:class:`SignalContext` per evaluation caches shared queries, so twenty rules cost a handful of queries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.alerts.rules import UNAVAILABLE_STATUSES, Rule, format_duration
from core.queries import _sql
from core.store import latency_buckets
from core.store.tables import instances, metric_rollups_1h, metric_rollups_1m

if TYPE_CHECKING:
    import pandas as pd

#: Traffic scope → the rollup columns that make its label set.
SCOPE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "global": (),
    "provider": ("provider",),
    "key": ("provider", "key_label"),
    "model": ("provider", "model"),
}
MINUTE_TIER_LONGEST = timedelta(hours=3)
INSTANCE_LOOKBACK = timedelta(days=7)
PROBE_LOOKBACK = timedelta(days=7)
#: Reason text core.control gives keys disabled by an alert's enforcement: those are not "unhealthy" alerts.
ALERT_DISABLED_PREFIX = "disabled by alert:"


@dataclass(frozen=True, slots=True)
class Reading:
    """One label set's value for one rule. ``enough`` is False when the window holds fewer calls than the rule's
    ``min_sample``: the alert then keeps its current state (neither fires nor resolves on thin evidence)."""

    labels: dict[str, str]
    value: float | None
    breached: bool
    summary: str
    threshold: float | None = None
    enough: bool = True
    details: dict[str, Any] = field(default_factory=dict)


Totals = dict[str, float]


@dataclass
class SignalContext:
    """The store, the time and the per-evaluation caches every kind reads through."""

    engine: sa.Engine
    now: datetime
    heartbeat_interval_s: float = 5.0
    probe_interval_s: float = 300.0
    channel_names: tuple[str, ...] = ()
    _cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    # --- rollups ---------------------------------------------------------------------------------------------------

    def totals(
        self, start: datetime, end: datetime, dims: tuple[str, ...], source: str
    ) -> dict[tuple[str, ...], Totals]:
        """Summed rollup columns per label-set tuple over ``[start, end)``."""
        return self.cached(
            ("totals", start, end, dims, source), lambda: grouped_totals(self.engine, start, end, dims, source)
        )

    # --- snapshots ---------------------------------------------------------------------------------------------------

    def key_health(self) -> pd.DataFrame:
        from core.queries.keys import latest_key_health

        return self.cached(
            "keys",
            lambda: latest_key_health(self.engine, self.now, heartbeat_interval_s=self.heartbeat_interval_s).keys,
        )

    def queues(self) -> pd.DataFrame:
        from core.queries.keys import current_queues, latest_instances

        return self.cached(
            "queues",
            lambda: current_queues(
                latest_instances(self.engine, self.now, heartbeat_interval_s=self.heartbeat_interval_s)
            ),
        )


# --- the grouped rollup query -----------------------------------------------------------------------------------


def _spans(start: datetime, end: datetime) -> list[tuple[sa.Table, datetime, datetime]]:
    """Which tier covers which part of ``[start, end)``: minutes for short windows; otherwise the whole hours from
    the hour tier and the partial hours at either end from the minute tier (the writer keeps both in one
    transaction, so they agree) — as :func:`core.queries.kpis.range_totals` does, grouped."""
    low = _sql.floor_time(start, 60)
    if end - start <= MINUTE_TIER_LONGEST:
        return [(metric_rollups_1m, low, end)]
    first_hour = _sql.floor_time(low + timedelta(seconds=3599), 3600)
    last_hour = _sql.floor_time(end, 3600)
    if first_hour >= last_hour:
        return [(metric_rollups_1m, low, end)]
    spans = [(metric_rollups_1h, first_hour, last_hour)]
    spans += [(metric_rollups_1m, a, b) for a, b in ((low, first_hour), (last_hour, end)) if a < b]
    return spans


def grouped_totals(
    engine: sa.Engine, start: datetime, end: datetime, dims: tuple[str, ...], source: str
) -> dict[tuple[str, ...], Totals]:
    """Per label-set tuple (values of ``dims``), the sums of every additive rollup column plus latency max."""
    found: dict[tuple[str, ...], Totals] = {}
    by_table: dict[str, list[tuple[datetime, datetime]]] = {}
    tables: dict[str, sa.Table] = {}
    for table, a, b in _spans(start, end):
        by_table.setdefault(table.name, []).append((a, b))
        tables[table.name] = table
    for name, spans in by_table.items():
        table = tables[name]
        where = [sa.or_(*(sa.and_(table.c.bucket >= a, table.c.bucket < b) for a, b in spans))]
        if source != "all":
            where.append(table.c.source == source)
        columns = [table.c[d] for d in dims]
        statement = sa.select(*columns, *_sql.summed(table)).where(*where)
        if columns:
            statement = statement.group_by(*columns)
        names, rows = _sql.fetch(engine, statement)
        for row in rows:
            key = tuple(str(v) for v in row[: len(dims)])
            values = dict(zip(names[len(dims) :], row[len(dims) :], strict=True))
            if not dims and not values["calls"] and not values["cost_usd"]:
                continue  # the ungrouped SUM returns one row of zeros for an empty window
            have = found.get(key)
            if have is None:
                found[key] = {k: (v or 0) for k, v in values.items()}
            else:
                for k, v in values.items():
                    have[k] = max(have[k], v or 0) if k == "latency_max_ms" else have[k] + (v or 0)
    return found


# --- helpers ------------------------------------------------------------------------------------------------------


def scope_text(labels: dict[str, str]) -> str:
    """``anthropic``, ``anthropic key 'Primary'``, ``openai model gpt-4.1`` or ``all providers``."""
    if not labels.get("provider"):
        return "all providers"
    text = labels["provider"]
    if labels.get("key_label"):
        text += f" key {labels['key_label']!r}"
    if labels.get("model"):
        text += f" model {labels['model']}"
    return text


def _pct(value: float) -> str:
    return f"{value:.1f} %"


def _labels_for(rule: Rule, dims: tuple[str, ...], key: tuple[str, ...]) -> dict[str, str] | None:
    labels = dict(zip(dims, key, strict=True))
    if "key_label" in labels and not labels["key_label"]:
        return None  # attempts that had no key (e.g. rejected before one was chosen) have no key alert
    if rule.provider is not None and labels.get("provider", rule.provider) != rule.provider:
        return None
    if rule.key_label is not None and labels.get("key_label", rule.key_label) != rule.key_label:
        return None
    return labels


def _window(rule: Rule, ctx: SignalContext) -> tuple[datetime, datetime]:
    assert rule.window_s
    return ctx.now - timedelta(seconds=rule.window_s), ctx.now


def _traffic(rule: Rule, ctx: SignalContext, start: datetime, end: datetime) -> list[tuple[dict[str, str], Totals]]:
    dims = SCOPE_DIMENSIONS[rule.scope]
    out = []
    for key, totals in sorted(ctx.totals(start, end, dims, rule.source).items()):
        labels = _labels_for(rule, dims, key)
        if labels is not None:
            out.append((labels, totals))
    return out


def _rate_reading(rule: Rule, labels: dict[str, str], value: float | None, calls: int, summary: str) -> Reading:
    enough = calls >= rule.min_sample and value is not None
    return Reading(labels, value, enough and rule.breached(value), summary, rule.threshold, enough, {"calls": calls})


# --- traffic kinds ------------------------------------------------------------------------------------------------


def success_rate_below(rule: Rule, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, t in _traffic(rule, ctx, *_window(rule, ctx)):
        calls = int(t["calls"])
        value = t["successes"] / calls * 100 if calls else None
        shown = "n/a" if value is None else _pct(value)
        summary = (
            f"{scope_text(labels)} success rate {shown} < {rule.threshold:g} % over {format_duration(rule.window_s)}"
            f" ({calls} calls)"
        )
        out.append(_rate_reading(rule, labels, value, calls, summary))
    return out


def p95_latency_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, t in _traffic(rule, ctx, *_window(rule, ctx)):
        calls = int(t["calls"])
        p95 = latency_buckets.quantile([int(t[name]) for name in latency_buckets.COLUMN_NAMES], 0.95)
        shown = "n/a" if p95 is None else f"{p95:.0f} ms"
        summary = (
            f"{scope_text(labels)} p95 latency {shown} > {rule.threshold:g} ms over {format_duration(rule.window_s)}"
        )
        out.append(_rate_reading(rule, labels, p95, calls, summary))
    return out


def error_class_share_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    column = f"err_{rule.error_class}"
    out = []
    for labels, t in _traffic(rule, ctx, *_window(rule, ctx)):
        calls = int(t["calls"])
        value = t[column] / calls * 100 if calls else None
        shown = "n/a" if value is None else _pct(value)
        summary = (
            f"{scope_text(labels)} {rule.error_class} share {shown} > {rule.threshold:g} % over "
            f"{format_duration(rule.window_s)} ({int(t[column])} of {calls} calls)"
        )
        out.append(_rate_reading(rule, labels, value, calls, summary))
    return out


def fallback_rate_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, t in _traffic(rule, ctx, *_window(rule, ctx)):
        calls = int(t["calls"])
        value = t["fallbacks"] / calls * 100 if calls else None
        shown = "n/a" if value is None else _pct(value)
        summary = (
            f"{scope_text(labels)} fallback rate {shown} > {rule.threshold:g} % over {format_duration(rule.window_s)}"
            f" ({int(t['fallbacks'])} of {calls} calls served as a fallback)"
        )
        out.append(_rate_reading(rule, labels, value, calls, summary))
    return out


def _cost(rule: Rule, ctx: SignalContext, per: str) -> list[Reading]:
    out = []
    for labels, t in _traffic(rule, ctx, *_window(rule, ctx)):
        cost = float(t["cost_usd"])
        summary = (
            f"{scope_text(labels)} spent ${cost:.2f} in the last {format_duration(rule.window_s)} "
            f"(budget ${rule.threshold:g} per {per})"
        )
        out.append(_rate_reading(rule, labels, cost, int(t["calls"]), summary))
    return out


def cost_per_hour_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    return _cost(rule, ctx, "hour")


def cost_per_day_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    return _cost(rule, ctx, "day")


def month_start(now: datetime) -> datetime:
    moment = now.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def key_monthly_spend(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Month-to-date spend per key (UTC calendar month, live and probe calls) as a percentage of its cap."""
    start = month_start(ctx.now)
    if ctx.now <= start:
        return []
    out = []
    for labels, t in _traffic(rule, ctx, start, ctx.now):
        cap = rule.cap_for(labels["key_label"])
        if cap is None:
            continue
        spend = float(t["cost_usd"])
        value = spend / cap * 100
        summary = (
            f"{scope_text(labels)} month-to-date spend ${spend:.2f} = {value:.0f} % of its ${cap:g} cap "
            f"(alert at {rule.threshold:g} %)"
        )
        out.append(
            Reading(
                labels,
                value,
                rule.breached(value),
                summary,
                rule.threshold,
                details={"spend_usd": spend, "cap_usd": cap},
            )
        )
    return out


def tokens_per_hour_above_baseline(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Tokens (in + out) over the window, per hour, against the average hourly tokens of the trailing baseline."""
    start, end = _window(rule, ctx)
    baseline_s = rule.baseline_s or 7 * 86400
    hours = rule.window_s / 3600 if rule.window_s else 1.0
    base_start = _sql.floor_time(start - timedelta(seconds=baseline_s), 3600)
    base_end = _sql.floor_time(start, 3600)
    base = {}
    if base_end > base_start:
        baseline_rule = rule
        base = {tuple(labels.values()): t for labels, t in _traffic(baseline_rule, ctx, base_start, base_end)}
    base_hours = max(1.0, (base_end - base_start).total_seconds() / 3600)
    out = []
    for labels, t in _traffic(rule, ctx, start, end):
        tokens = float(t["input_tokens"] + t["output_tokens"]) / hours
        before = base.get(tuple(labels.values()))
        baseline = float(before["input_tokens"] + before["output_tokens"]) / base_hours if before else 0.0
        value = tokens / baseline if baseline > 0 else None
        shown = "n/a (no baseline)" if value is None else f"{value:.1f}×"
        summary = (
            f"{scope_text(labels)} {tokens:,.0f} tokens/h over {format_duration(rule.window_s)} = {shown} the "
            f"{format_duration(baseline_s)} baseline of {baseline:,.0f} tokens/h (alert above {rule.threshold:g}×)"
        )
        out.append(_rate_reading(rule, labels, value, int(t["calls"]), summary))
    return out


def slo_burn_rate(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Multi-window burn rate (SRE workbook): the error ratio over the long window and over the short one, each
    divided by the error budget (1 − objective); breached when both exceed the threshold. The value is the
    smaller of the two burn rates."""
    assert rule.window_s and rule.objective is not None
    short_s = rule.short_window_s or rule.window_s / 12
    budget = 1 - rule.objective / 100
    long_rows = _traffic(rule, ctx, *_window(rule, ctx))
    short = {tuple(lb.values()): t for lb, t in _traffic(rule, ctx, ctx.now - timedelta(seconds=short_s), ctx.now)}
    out = []
    for labels, t in long_rows:
        calls = int(t["calls"])
        long_burn = (1 - t["successes"] / calls) / budget if calls else 0.0
        s = short.get(tuple(labels.values()))
        short_calls = int(s["calls"]) if s else 0
        short_burn = (1 - s["successes"] / short_calls) / budget if s and short_calls else 0.0
        value = min(long_burn, short_burn)
        summary = (
            f"{scope_text(labels)} error budget burning {long_burn:.1f}× over {format_duration(rule.window_s)} and "
            f"{short_burn:.1f}× over {format_duration(short_s)} (alert above {rule.threshold:g}× for a "
            f"{rule.objective:g} % objective)"
        )
        reading = _rate_reading(rule, labels, value, calls, summary)
        out.append(
            Reading(
                reading.labels,
                reading.value,
                reading.breached,
                reading.summary,
                reading.threshold,
                reading.enough,
                {"calls": calls, "long_burn": long_burn, "short_burn": short_burn},
            )
        )
    return out


# --- state kinds --------------------------------------------------------------------------------------------------


def _keep(rule: Rule, labels: dict[str, str]) -> bool:
    return _labels_for(rule, tuple(labels), tuple(labels.values())) is not None


def key_unhealthy(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """The worst live view of each key: breached while its status is one of the rule's ``statuses``. A key disabled
    by an alert's own budget enforcement is not reported again here."""
    statuses = rule.statuses or ("unhealthy", "disabled")
    out = []
    for row in ctx.key_health().to_dict("records"):
        labels = {"provider": row["provider"], "key_label": row["key_label"]}
        if not _keep(rule, labels):
            continue
        status = row["status"]
        reason = row.get("disabled_reason")
        by_alert = isinstance(reason, str) and reason.startswith(ALERT_DISABLED_PREFIX)
        breached = status in statuses and not (status == "disabled" and by_alert)
        detail = f" ({reason})" if isinstance(reason, str) and reason else ""
        summary = f"{scope_text(labels)} is {status}{detail}, score {float(row['score']):.2f}"
        out.append(Reading(labels, float(row["score"]), breached, summary, None, details={"status": status}))
    return out


def provider_all_keys_unavailable(rule: Rule, ctx: SignalContext) -> list[Reading]:
    frame = ctx.key_health()
    out = []
    if frame.empty:
        return out
    for provider, group in frame.groupby("provider", sort=True):
        labels = {"provider": str(provider)}
        if not _keep(rule, labels):
            continue
        statuses = list(group["status"])
        down = [s for s in statuses if s in UNAVAILABLE_STATUSES]
        available = len(statuses) - len(down)
        counts = ", ".join(f"{s} {down.count(s)}" for s in UNAVAILABLE_STATUSES if s in down)
        if available == 0:
            summary = f"all {len(statuses)} {provider} keys unavailable ({counts})"
        else:
            summary = f"{provider}: {available} of {len(statuses)} keys available"
        out.append(Reading(labels, float(available), available == 0, summary, 0.0))
    return out


def _queue_rows(rule: Rule, ctx: SignalContext) -> list[tuple[dict[str, str], dict[str, Any]]]:
    out = []
    for row in ctx.queues().to_dict("records"):
        labels = {"provider": str(row["provider"])}
        if _keep(rule, labels):
            out.append((labels, row))
    return out


def breaker_open(rule: Rule, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, row in _queue_rows(rule, ctx):
        value = float(row["breaker_open_instances"])
        summary = f"{scope_text(labels)} circuit breaker open on {value:.0f} of {int(row['instances'])} live instances"
        out.append(Reading(labels, value, rule.breached(value), summary, rule.threshold))
    return out


def queue_depth_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, row in _queue_rows(rule, ctx):
        value = float(row["queue_depth"])
        summary = f"{scope_text(labels)} queue depth {value:.0f} > {rule.threshold:g} (summed over live instances)"
        out.append(Reading(labels, value, rule.breached(value), summary, rule.threshold))
    return out


def queue_wait_above(rule: Rule, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, row in _queue_rows(rule, ctx):
        wait_ms = row["oldest_wait_ms"]
        value = 0.0 if wait_ms is None or math.isnan(wait_ms) else float(wait_ms) / 1000
        summary = f"{scope_text(labels)} oldest queued request waiting {value:.0f} s > {rule.threshold:g} s"
        out.append(Reading(labels, value, rule.breached(value), summary, rule.threshold))
    return out


def consecutive_probe_failures(rule: Rule, ctx: SignalContext) -> list[Reading]:
    from core.probe import consecutive_probe_failures as failures

    counts = ctx.cached("probe_failures", lambda: failures(ctx.engine, ctx.now))
    out = []
    for (provider, label), count in sorted(counts.items()):
        labels = {"provider": provider, "key_label": label}
        if not _keep(rule, labels):
            continue
        value = float(count)
        summary = f"{scope_text(labels)} failed its last {count} probes (alert at {rule.threshold:g})"
        out.append(Reading(labels, value, rule.breached(value), summary, rule.threshold))
    return out


def no_heartbeat(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Per instance kind seen in the last week: seconds since the newest heartbeat of any instance of that kind."""

    def newest() -> dict[str, datetime]:
        query = (
            sa.select(instances.c.kind, sa.func.max(instances.c.last_seen))
            .where(instances.c.last_seen > ctx.now - INSTANCE_LOOKBACK)
            .group_by(instances.c.kind)
        )
        with ctx.engine.connect() as connection:
            return {kind: _aware(last) for kind, last in connection.execute(query)}

    out = []
    for kind, last in sorted(ctx.cached("heartbeats", newest).items()):
        if rule.instance_kind is not None and kind != rule.instance_kind:
            continue
        age = max(0.0, (ctx.now - last).total_seconds())
        summary = f"no heartbeat from any {kind} for {age:.0f} s (alert above {rule.threshold:g} s)"
        out.append(Reading({"instance_kind": kind}, age, rule.breached(age), summary, rule.threshold))
    return out


def no_probes(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Per provider probed in the last week: seconds since its newest probe result (the end of the newest rollup
    bucket holding probe calls). Default threshold: three times the longest probe interval."""
    threshold = rule.threshold if rule.threshold is not None else 3 * ctx.probe_interval_s
    minute_lookback = min(timedelta(days=1), timedelta(seconds=threshold) + timedelta(hours=1))

    def newest() -> dict[str, datetime]:
        found: dict[str, datetime] = {}
        for table, tier, lookback in (
            (metric_rollups_1h, 3600, PROBE_LOOKBACK),
            (metric_rollups_1m, 60, minute_lookback),
        ):
            query = (
                sa.select(table.c.provider, sa.func.max(table.c.bucket))
                .where(table.c.source == "probe", table.c.bucket >= ctx.now - lookback, table.c.bucket <= ctx.now)
                .group_by(table.c.provider)
            )
            with ctx.engine.connect() as connection:
                for provider, bucket in connection.execute(query):
                    end = min(ctx.now, _aware(bucket) + timedelta(seconds=tier))
                    if tier == 60 or provider not in found:
                        found[provider] = end  # the minute tier is exact where it has rows
        return found

    out = []
    for provider, last in sorted(ctx.cached("probes", newest).items()):
        labels = {"provider": provider}
        if not _keep(rule, labels):
            continue
        age = max(0.0, (ctx.now - last).total_seconds())
        summary = (
            f"no {provider} probe result for {format_duration(round(age))} (alert above {format_duration(threshold)})"
        )
        out.append(Reading(labels, age, age > threshold, summary, threshold))
    return out


def channel_failing(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Per configured channel: breached while its deliveries are failing or it is broken (permanent error)."""
    from core.alerts.delivery import channel_health

    health = ctx.cached("channels", lambda: channel_health(ctx.engine, ctx.now, channels=ctx.channel_names))
    out = []
    for name in ctx.channel_names:
        state = health.get(name)
        status = state.state if state is not None else "unknown"
        detail = state.last_error if state is not None else None
        breached = status in ("failing", "broken")
        summary = f"notification channel {name!r} is {status}" + (f": {detail}" if breached and detail else "")
        out.append(Reading({"channel": name}, 1.0 if breached else 0.0, breached, summary[:480], None))
    return out


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


KIND_SIGNALS: dict[str, Callable[[Rule, SignalContext], list[Reading]]] = {
    "success_rate_below": success_rate_below,
    "p95_latency_above": p95_latency_above,
    "error_class_share_above": error_class_share_above,
    "key_unhealthy": key_unhealthy,
    "provider_all_keys_unavailable": provider_all_keys_unavailable,
    "breaker_open": breaker_open,
    "queue_depth_above": queue_depth_above,
    "queue_wait_above": queue_wait_above,
    "fallback_rate_above": fallback_rate_above,
    "consecutive_probe_failures": consecutive_probe_failures,
    "cost_per_hour_above": cost_per_hour_above,
    "cost_per_day_above": cost_per_day_above,
    "key_monthly_spend": key_monthly_spend,
    "tokens_per_hour_above_baseline": tokens_per_hour_above_baseline,
    "no_heartbeat": no_heartbeat,
    "no_probes": no_probes,
    "channel_failing": channel_failing,
    "slo_burn_rate": slo_burn_rate,
}


def read(rule: Rule, ctx: SignalContext) -> list[Reading]:
    """Every label set's reading for ``rule`` (the rule's static labels are added by the engine)."""
    return KIND_SIGNALS[rule.kind](rule, ctx)
