"""The kinds read from the latest state rather than a window of calls: key health and provider key availability
(heartbeat snapshots), breakers and queues (live instances), probe streaks, heartbeats, probe freshness, channels.

Threshold kinds state their value beside their bound in the shared form (``anthropic queue depth 150 > 100``,
``… back to 20 (≤ 50)``); the yes/no kinds say what the state is (``anthropic key 'Primary' is unhealthy`` while
firing, ``anthropic key 'Primary' is healthy (not unhealthy or disabled)`` once resolved).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.alerts.reading import Reading, compared_reading, scope_text
from pulsegate.core.alerts.rule_fields import RuleFields
from pulsegate.core.alerts.signal_context import SignalContext, keep
from pulsegate.core.alerts.wording import COUNT, SECONDS
from pulsegate.core.clock import as_utc
from pulsegate.core.store.tables import instances, metric_rollups_1h, metric_rollups_1m

INSTANCE_LOOKBACK = timedelta(days=7)
PROBE_LOOKBACK = timedelta(days=7)
#: Reason text pulsegate.core.ops.control gives keys disabled by an alert's enforcement: those are not "unhealthy"
#: alerts.
ALERT_DISABLED_PREFIX = "disabled by alert:"
#: Key statuses that count as "unavailable" for provider_all_keys_unavailable (healthy / degraded still serve).
UNAVAILABLE_STATUSES = ("unhealthy", "cooldown", "disabled")


def key_unhealthy(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """The worst live view of each key: breached while its status is one of the rule's ``statuses``. A key disabled
    by an alert's own budget enforcement is not reported again here."""
    statuses = rule.statuses or ("unhealthy", "disabled")
    out = []
    for row in ctx.key_health().to_dict("records"):
        labels = {"provider": row["provider"], "key_label": row["key_label"]}
        if not keep(rule, labels):
            continue
        status = row["status"]
        reason = row.get("disabled_reason")
        by_alert = isinstance(reason, str) and reason.startswith(ALERT_DISABLED_PREFIX)
        breached = status in statuses and not (status == "disabled" and by_alert)
        score = float(row["score"])
        if breached:
            detail = f" ({reason})" if isinstance(reason, str) and reason else ""
            summary = f"{scope_text(labels)} is {status}{detail}, score {score:.2f}"
        else:
            summary = f"{scope_text(labels)} is {status} (not {' or '.join(statuses)}), score {score:.2f}"
        out.append(Reading(labels, score, breached, summary, None, details={"status": status}))
    return out


def provider_all_keys_unavailable(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    frame = ctx.key_health()
    out: list[Reading] = []
    if frame.empty:
        return out
    for provider, group in frame.groupby("provider", sort=True):
        labels = {"provider": str(provider)}
        if not keep(rule, labels):
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


def _queue_rows(rule: RuleFields, ctx: SignalContext) -> list[tuple[dict[str, str], dict[str, Any]]]:
    out = []
    for row in ctx.queues().to_dict("records"):
        labels = {"provider": str(row["provider"])}
        if keep(rule, labels):
            out.append((labels, row))
    return out


def breaker_open(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, row in _queue_rows(rule, ctx):
        value = float(row["breaker_open_instances"])
        subject = f"{scope_text(labels)} instances with the circuit breaker open"
        tail = f", of {int(row['instances'])} live"
        out.append(compared_reading(rule, labels, value, subject=subject, quantity=COUNT, tail=tail))
    return out


def queue_depth_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, row in _queue_rows(rule, ctx):
        value = float(row["queue_depth"])
        subject = f"{scope_text(labels)} queue depth"
        tail = " (summed over live instances)"
        out.append(compared_reading(rule, labels, value, subject=subject, quantity=COUNT, tail=tail))
    return out


def queue_wait_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, row in _queue_rows(rule, ctx):
        wait_ms = row["oldest_wait_ms"]
        value = 0.0 if wait_ms is None or math.isnan(wait_ms) else float(wait_ms) / 1000
        subject = f"{scope_text(labels)} oldest queued request's wait"
        out.append(compared_reading(rule, labels, value, subject=subject, quantity=SECONDS))
    return out


def consecutive_probe_failures(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    from pulsegate.core.ops.probe_history import consecutive_probe_failures as failures

    counts = ctx.cached("probe_failures", lambda: failures(ctx.engine, ctx.now))
    out = []
    for (provider, label), count in sorted(counts.items()):
        labels = {"provider": provider, "key_label": label}
        if not keep(rule, labels):
            continue
        subject = f"{scope_text(labels)} failed probes in a row"
        out.append(compared_reading(rule, labels, float(count), subject=subject, quantity=COUNT))
    return out


def no_heartbeat(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """Per instance kind seen in the last week: seconds since the newest heartbeat of any instance of that kind."""

    def newest() -> dict[str, datetime]:
        query = (
            sa.select(instances.c.kind, sa.func.max(instances.c.last_seen))
            .where(instances.c.last_seen > ctx.now - INSTANCE_LOOKBACK)
            .group_by(instances.c.kind)
        )
        with ctx.engine.connect() as connection:
            return {kind: as_utc(last) for kind, last in connection.execute(query)}

    out = []
    for kind, last in sorted(ctx.cached("heartbeats", newest).items()):
        if rule.instance_kind is not None and kind != rule.instance_kind:
            continue
        age = max(0.0, (ctx.now - last).total_seconds())
        subject = f"time since the last heartbeat of any {kind}"
        out.append(compared_reading(rule, {"instance_kind": kind}, age, subject=subject, quantity=SECONDS))
    return out


def no_probes(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
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
                    end = min(ctx.now, as_utc(bucket) + timedelta(seconds=tier))
                    if tier == 60 or provider not in found:
                        found[provider] = end  # the minute tier is exact where it has rows
        return found

    out = []
    for provider, last in sorted(ctx.cached("probes", newest).items()):
        labels = {"provider": provider}
        if not keep(rule, labels):
            continue
        age = max(0.0, (ctx.now - last).total_seconds())
        subject = f"time since the last {provider} probe result"
        out.append(compared_reading(rule, labels, age, subject=subject, quantity=SECONDS, threshold=threshold))
    return out


def channel_failing(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """Per configured channel: breached while its deliveries are failing or it is broken (permanent error)."""
    from pulsegate.core.alerts.channel_health import channel_health

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
