"""The health document served at ``GET /api/admin/ai-health``: the original spec's JSON shape plus our extras.

Shape (original field names, kept exactly)::

    {"status": "ok" | "degraded" | "down",
     "services": {"apiKeys": {"<provider>": [{"key": label, "health": 0-100 int, "status": key status}]},
                  "rateLimiter": {"<provider>": {"queueSize": int,
                                                 "rateLimit": {"requests": int, "remaining": int}}}},
     "statistics": {"totalRequests": int, "successRate": float | null, "avgResponseTime": int | null},
     "details": {...our extras, see below...}}

Status rule (see :func:`overall_status`), mapped to HTTP by :data:`HTTP_STATUS` (ok 200, degraded 200, down 503):

* a provider counts when at least one live instance reports a key for it;
* a provider is **down** when every one of its keys is unusable (``cooldown`` or ``disabled`` in the worst live
  view) or its breaker is ``open`` on every live instance reporting it; **degraded** when any of its keys is not
  ``healthy`` or any live breaker is not ``closed``; else **ok**;
* overall **down** when every counted provider is down (no call can be served, even by fallback); **degraded** when
  any provider is degraded or down, when no live instance has reported, or when the window's live success rate is
  below ``min_success_rate`` with at least ``min_requests`` attempts; else **ok**.

Data: statistics from the rollup tiers over ``[now - window, now)`` (live traffic only, attempts); keys, queues,
limiters and breakers from each live instance's latest snapshot (stale instances are left out and listed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.queries.keys import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    current_queues,
    latest_instances,
    latest_key_views,
    stale_before,
    stale_instances,
    worst_live_view,
)
from pulsegate.core.queries.kpis import kpis_from_totals, range_totals
from pulsegate.core.queries.probes import last_probes
from pulsegate.core.store import latency_buckets

HTTP_STATUS: dict[str, int] = {"ok": 200, "degraded": 200, "down": 503}
UNUSABLE_KEY_STATUSES = frozenset({"cooldown", "disabled"})
DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_MIN_SUCCESS_RATE = 95.0
DEFAULT_MIN_REQUESTS = 20


def http_status(report: Mapping[str, Any]) -> int:
    """The HTTP status the worker answers with for a report: 200, 200, 503."""
    return HTTP_STATUS[report["status"]]


def health_report(
    engine: sa.Engine,
    now: datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
    live_snapshot: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    min_success_rate: float = DEFAULT_MIN_SUCCESS_RATE,
    min_requests: int = DEFAULT_MIN_REQUESTS,
) -> dict[str, Any]:
    """The health document at ``now`` (timezone-aware). ``live_snapshot`` — optional ``{"instances": [...],
    "keys": [...]}`` rows shaped like ``instance_snapshots`` / ``key_health_snapshots`` rows — is the caller's own
    current state: it replaces the stored snapshots of the same instance ids and counts as live at ``now``."""
    if window <= timedelta(0):
        raise ValueError(f"window must be positive, got {window}")
    flt = QueryFilter(now - window, now)
    instances = latest_instances(engine, now, heartbeat_interval_s=heartbeat_interval_s)
    views = latest_key_views(engine, now)
    if live_snapshot:
        instances, views = _merge_live(instances, views, live_snapshot, now)
    keys = worst_live_view(views, now, heartbeat_interval_s)
    queues = current_queues(instances)
    live = instances[~instances["stale"].astype(bool)]
    live_ids = set(live["instance_id"])
    if not views.empty:
        fresh = pd.to_datetime(views["ts"], utc=True) >= pd.Timestamp(stale_before(now, heartbeat_interval_s))
        live_ids |= set(views.loc[fresh, "instance_id"])

    live_totals = range_totals(engine, replace(flt, source="live"))
    probe_totals = range_totals(engine, replace(flt, source="probe"))
    stats = kpis_from_totals(live_totals)
    calls = int(live_totals["calls"])
    success_rate = round(stats["success_rate"] * 100, 1) if common.answered(live_totals) else None
    avg_ms = round(stats["avg_latency_ms"]) if calls else None

    providers = sorted(set(keys["provider"]) | set(live["provider"]))
    api_keys: dict[str, list[dict[str, Any]]] = {}
    key_details: dict[str, list[dict[str, Any]]] = {}
    probes = last_probes(engine, flt)
    for row in keys.itertuples(index=False):
        api_keys.setdefault(row.provider, []).append(
            {"key": row.key_label, "health": round(row.score), "status": row.status}
        )
        probe = probes.get((row.provider, row.key_label))
        key_details.setdefault(row.provider, []).append(
            {
                "key": row.key_label,
                "keyMasked": row.key_masked,
                "score": float(row.score),
                "status": row.status,
                "cooldownUntil": _iso(row.cooldown_until),
                "consecutiveFailures": int(row.consecutive_failures),
                "disabledReason": row.disabled_reason,
                "liveInstances": int(row.instances),
                "lastSeen": _iso(row.last_seen),
                "lastProbe": None
                if probe is None
                else {"at": probe.at.isoformat(), "ok": probe.ok, "calls": probe.calls},
            }
        )

    rate_limiter: dict[str, dict[str, Any]] = {}
    breakers: dict[str, dict[str, Any]] = {}
    for provider in providers:
        queue = queues[queues["provider"] == provider]
        first = queue.iloc[0] if not queue.empty else None
        rate_limiter[provider] = {
            "queueSize": _int(first["queue_depth"]) if first is not None else 0,
            "rateLimit": {
                "requests": _int(first["requests_used"]) if first is not None else 0,
                "remaining": _int(first["requests_remaining"]) if first is not None else 0,
            },
        }
        states = live.loc[live["provider"] == provider, "breaker_state"].fillna("closed")
        counts = {str(k): int(v) for k, v in states.value_counts().sort_index().items()}
        breakers[provider] = {
            "state": _worst_breaker(counts),
            "instances": counts,
            "oldestWaitMs": None
            if first is None or pd.isna(first["oldest_wait_ms"])
            else float(first["oldest_wait_ms"]),
            "limit": None if first is None or pd.isna(first["requests_limit"]) else _int(first["requests_limit"]),
        }

    provider_status = {
        provider: provider_health([k["status"] for k in api_keys.get(provider, [])], breakers[provider]["instances"])
        for provider in providers
    }
    status, reasons = overall_status(
        provider_status,
        live_instances=len(live_ids),
        success_rate=success_rate,
        requests=calls,
        min_success_rate=min_success_rate,
        min_requests=min_requests,
    )
    buckets = [int(live_totals[name]) for name in latency_buckets.COLUMN_NAMES]
    stale = stale_instances(instances)
    return {
        "status": status,
        "services": {"apiKeys": api_keys, "rateLimiter": rate_limiter},
        "statistics": {"totalRequests": calls, "successRate": success_rate, "avgResponseTime": avg_ms},
        "details": {
            "checkedAt": now.isoformat(),
            "httpStatus": HTTP_STATUS[status],
            "statusReasons": reasons,
            "windowSeconds": int(window.total_seconds()),
            "providerStatus": provider_status,
            "latency": {
                "p50Ms": _round(latency_buckets.quantile(buckets, 0.5)),
                "p95Ms": _round(latency_buckets.quantile(buckets, 0.95)),
                "p99Ms": _round(latency_buckets.quantile(buckets, 0.99)),
                "maxMs": _round(float(live_totals["latency_max_ms"])) if calls else None,
            },
            "errors": int(live_totals["errors"]),
            "cancelled": int(live_totals["cancelled"]),
            "errorClasses": {
                name.removeprefix("err_"): int(live_totals[name]) for name in common.ERROR_COLUMNS if live_totals[name]
            },
            "fallbacks": int(live_totals["fallbacks"]),
            "costUsd": round(float(live_totals["cost_usd"]), 6),
            "unpricedRequests": int(live_totals["unpriced"]),
            "tokens": {"input": int(live_totals["input_tokens"]), "output": int(live_totals["output_tokens"])},
            "probes": {"total": int(probe_totals["calls"]), "failed": int(probe_totals["errors"])},
            "breakers": breakers,
            "keys": key_details,
            "liveInstances": len(live_ids),
            "staleInstances": [
                {"instanceId": r.instance_id, "kind": r.kind, "host": r.host, "lastSeen": _iso(r.last_seen)}
                for r in stale.itertuples(index=False)
            ],
        },
    }


def provider_health(key_statuses: Sequence[str], breaker_instances: Mapping[str, int]) -> str:
    """``down`` | ``degraded`` | ``ok`` for one provider (see the module docstring)."""
    live_breakers = sum(breaker_instances.values())
    if key_statuses and all(s in UNUSABLE_KEY_STATUSES for s in key_statuses):
        return "down"
    if live_breakers and breaker_instances.get("open", 0) == live_breakers:
        return "down"
    if any(s != "healthy" for s in key_statuses) or breaker_instances.get("closed", 0) != live_breakers:
        return "degraded"
    return "ok"


def overall_status(
    provider_status: Mapping[str, str],
    *,
    live_instances: int,
    success_rate: float | None,
    requests: int,
    min_success_rate: float = DEFAULT_MIN_SUCCESS_RATE,
    min_requests: int = DEFAULT_MIN_REQUESTS,
) -> tuple[str, list[str]]:
    """The overall status and the reasons for it (empty when ok)."""
    reasons = [f"{p} is {s}" for p, s in sorted(provider_status.items()) if s != "ok"]
    if live_instances == 0:
        reasons.append("no live instance has reported")
    if success_rate is not None and requests >= min_requests and success_rate < min_success_rate:
        reasons.append(f"success rate {success_rate}% is below {min_success_rate}%")
    if provider_status and all(s == "down" for s in provider_status.values()):
        return "down", reasons
    return ("degraded" if reasons else "ok"), reasons


def _merge_live(
    instances: pd.DataFrame, views: pd.DataFrame, live: Mapping[str, Sequence[Mapping[str, Any]]], now: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    own_instances = [{"ts": now, **row} for row in live.get("instances", ())]
    own_keys = [{"ts": now, **row} for row in live.get("keys", ())]
    ids = {row["instance_id"] for row in [*own_instances, *own_keys]}
    if own_instances:
        extra = pd.DataFrame(own_instances).reindex(columns=instances.columns)
        extra["ts"] = pd.to_datetime(extra["ts"], utc=True)
        extra["last_seen"] = pd.Timestamp(now)
        extra["stale"] = False
        kept = instances[~instances["instance_id"].isin(ids)]
        instances = pd.concat([df for df in (kept, extra) if not df.empty], ignore_index=True)
        instances["stale"] = instances["stale"].astype(bool)
    if own_keys:
        extra = pd.DataFrame(own_keys)
        kept = views[~views["instance_id"].isin(ids)] if not views.empty else views
        if not kept.empty:
            extra = extra.reindex(columns=kept.columns)
            kept = kept.assign(ts=pd.to_datetime(kept["ts"], utc=True))
        extra["ts"] = pd.to_datetime(extra["ts"], utc=True)
        views = pd.concat([df for df in (kept, extra) if not df.empty], ignore_index=True)
    return instances, views


def _worst_breaker(counts: Mapping[str, int]) -> str | None:
    for state in ("open", "half_open", "closed"):
        if counts.get(state):
            return state
    return next(iter(counts), None)


def _int(value: Any) -> int:
    return 0 if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _iso(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).isoformat()
