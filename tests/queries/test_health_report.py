"""The /api/admin/ai-health document: original field names, status rule, stale instances, on both databases."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.ops.health_report import HTTP_STATUS, health_report, http_status, overall_status, provider_health
from tests.queries.data import (
    NOW,
    insert_instances,
    insert_keys,
    insert_tiers,
    instance_row,
    key_row,
    rollup_row,
)

FRESH = NOW - timedelta(seconds=2)
STALE = NOW - timedelta(minutes=5)


def as_json(report: dict) -> dict:
    return json.loads(json.dumps(report, allow_nan=False))


def healthy_fleet(store: sa.Engine) -> None:
    insert_instances(
        store,
        [
            instance_row(FRESH, "app-1", queue_depth=0, requests_used=7, requests_remaining=18),
            instance_row(FRESH, "app-2", queue_depth=0, requests_used=5, requests_remaining=20),
            instance_row(STALE, "gone", queue_depth=40, requests_used=25, requests_remaining=0, breaker_state="open"),
        ],
    )
    insert_keys(
        store,
        [
            key_row(FRESH, "app-1", "Primary", 95.4),
            key_row(FRESH, "app-2", "Primary", 97),
            key_row(STALE, "gone", "Primary", 3, "disabled", disabled_reason="auth"),
        ],
    )
    # 200 live attempts, 197 successes, average exactly 2341 ms; one probe; one row outside the 24 h window
    insert_tiers(
        store,
        [
            rollup_row(NOW - timedelta(hours=2), [2341] * 200, errors={"overloaded": 3}, fallbacks=2, cost_usd=1.25),
            rollup_row(NOW - timedelta(minutes=7), [40], source="probe"),
            rollup_row(NOW - timedelta(hours=30), [10] * 50, errors={"timeout": 50}),
        ],
    )


def test_ok_report_has_the_original_shape_and_exact_values(store: sa.Engine) -> None:
    healthy_fleet(store)
    report = as_json(health_report(store, NOW))
    original = {k: report[k] for k in ("status", "services", "statistics")}
    assert original == {
        "status": "ok",
        "services": {
            "apiKeys": {"anthropic": [{"key": "Primary", "health": 95, "status": "healthy"}]},
            "rateLimiter": {"anthropic": {"queueSize": 0, "rateLimit": {"requests": 12, "remaining": 38}}},
        },
        "statistics": {"totalRequests": 200, "successRate": 98.5, "avgResponseTime": 2341},
    }
    assert set(report) == {"status", "services", "statistics", "details"}
    details = report["details"]
    assert details["httpStatus"] == 200 and http_status(report) == 200
    assert details["statusReasons"] == []
    assert details["fallbacks"] == 2 and details["costUsd"] == 1.25 and details["errorClasses"] == {"overloaded": 3}
    assert 2341 / 2**0.5 <= details["latency"]["p95Ms"] <= 2341 * 2**0.5
    assert details["probes"] == {"total": 1, "failed": 0}
    assert details["liveInstances"] == 2
    assert details["staleInstances"] == [
        {"instanceId": "gone", "kind": "client", "host": "host-gone", "lastSeen": STALE.isoformat()}
    ]
    assert details["breakers"]["anthropic"]["state"] == "closed"
    assert details["breakers"]["anthropic"]["instances"] == {"closed": 2}
    primary = details["keys"]["anthropic"][0]
    assert primary["key"] == "Primary" and primary["liveInstances"] == 2 and primary["disabledReason"] is None
    assert primary["lastProbe"] == {"at": (NOW - timedelta(minutes=7)).isoformat(), "ok": True, "calls": 1}


def test_window_changes_the_statistics(store: sa.Engine) -> None:
    healthy_fleet(store)
    report = health_report(store, NOW, window=timedelta(hours=48))
    assert report["statistics"]["totalRequests"] == 250
    assert report["statistics"]["successRate"] == 78.8  # 197 / 250
    assert report["details"]["windowSeconds"] == 48 * 3600


def test_low_success_rate_degrades(store: sa.Engine) -> None:
    healthy_fleet(store)
    report = health_report(store, NOW, min_success_rate=99.0)
    assert report["status"] == "degraded"
    assert report["details"]["statusReasons"] == ["success rate 98.5% is below 99.0%"]
    # below min_requests the success rate alone does not degrade
    assert health_report(store, NOW, min_success_rate=99.0, min_requests=500)["status"] == "ok"


def test_a_key_in_cooldown_degrades(store: sa.Engine) -> None:
    healthy_fleet(store)
    insert_keys(
        store,
        [
            key_row(FRESH, "app-1", "Backup", 40, "cooldown", cooldown_until=NOW + timedelta(seconds=20)),
            key_row(FRESH, "app-2", "Backup", 70, "degraded"),
        ],
    )
    report = as_json(health_report(store, NOW))
    assert report["status"] == "degraded" and http_status(report) == 200
    assert report["services"]["apiKeys"]["anthropic"] == [
        {"key": "Backup", "health": 40, "status": "cooldown"},
        {"key": "Primary", "health": 95, "status": "healthy"},
    ]
    backup = report["details"]["keys"]["anthropic"][0]
    assert backup["cooldownUntil"] == (NOW + timedelta(seconds=20)).isoformat()
    assert report["details"]["providerStatus"] == {"anthropic": "degraded"}


def test_every_key_unusable_is_down(store: sa.Engine) -> None:
    insert_instances(store, [instance_row(FRESH, "app-1", queue_depth=6)])
    insert_keys(
        store,
        [
            key_row(FRESH, "app-1", "Primary", 10, "cooldown", cooldown_until=NOW + timedelta(seconds=60)),
            key_row(FRESH, "app-1", "Backup", 0, "disabled", disabled_reason="auth failed"),
        ],
    )
    report = as_json(health_report(store, NOW))
    assert report["status"] == "down" and http_status(report) == 503
    assert report["services"]["rateLimiter"]["anthropic"]["queueSize"] == 6
    assert report["statistics"] == {"totalRequests": 0, "successRate": None, "avgResponseTime": None}
    assert report["details"]["keys"]["anthropic"][0]["disabledReason"] == "auth failed"


def test_breaker_open_on_every_live_instance_is_down_but_fallback_keeps_it_degraded(store: sa.Engine) -> None:
    insert_instances(
        store,
        [
            instance_row(FRESH, "app-1", breaker_state="open"),
            instance_row(FRESH, "app-2", breaker_state="open"),
            instance_row(STALE, "gone", breaker_state="closed"),  # stale: does not count
        ],
    )
    insert_keys(store, [key_row(FRESH, "app-1", "Primary", 80)])
    report = health_report(store, NOW)
    assert report["status"] == "down"
    assert report["details"]["breakers"]["anthropic"] == {
        "state": "open",
        "instances": {"open": 2},
        "oldestWaitMs": None,
        "limit": 100,
    }
    # an openai key that works: calls fall back, so the service is degraded, not down
    insert_instances(store, [instance_row(FRESH, "app-1", "openai")])
    insert_keys(store, [key_row(FRESH, "app-1", "Main", 100, provider="openai")])
    report = health_report(store, NOW)
    assert report["status"] == "degraded"
    assert report["details"]["providerStatus"] == {"anthropic": "down", "openai": "ok"}
    assert report["details"]["statusReasons"] == ["anthropic is down"]


def test_empty_store_is_degraded_and_serialisable(store: sa.Engine) -> None:
    report = as_json(health_report(store, NOW))
    assert report["status"] == "degraded"
    assert report["services"] == {"apiKeys": {}, "rateLimiter": {}}
    assert report["statistics"] == {"totalRequests": 0, "successRate": None, "avgResponseTime": None}
    assert report["details"]["statusReasons"] == ["no live instance has reported"]


def test_live_snapshot_of_the_caller_counts_as_live(store: sa.Engine) -> None:
    insert_instances(store, [instance_row(STALE, "worker-1", kind="worker", queue_depth=9)])
    insert_keys(store, [key_row(STALE, "worker-1", "Primary", 5, "disabled")])
    live = {
        "instances": [instance_row(NOW, "worker-1", kind="worker", queue_depth=1, requests_used=3)],
        "keys": [key_row(NOW, "worker-1", "Primary", 88)],
    }
    report = as_json(health_report(store, NOW, live_snapshot=live))
    assert report["status"] == "ok"
    assert report["services"]["apiKeys"] == {"anthropic": [{"key": "Primary", "health": 88, "status": "healthy"}]}
    assert report["services"]["rateLimiter"]["anthropic"] == {
        "queueSize": 1,
        "rateLimit": {"requests": 3, "remaining": 50},
    }
    assert report["details"]["staleInstances"] == []


@pytest.mark.parametrize(
    ("keys", "breakers", "expected"),
    [
        (["healthy", "healthy"], {"closed": 2}, "ok"),
        (["healthy", "unhealthy"], {"closed": 1}, "degraded"),
        (["healthy"], {"closed": 1, "half_open": 1}, "degraded"),
        (["cooldown", "disabled"], {"closed": 1}, "down"),
        (["healthy"], {"open": 2}, "down"),
        (["healthy"], {"open": 1, "closed": 1}, "degraded"),
        ([], {}, "ok"),
    ],
)
def test_provider_health_rule(keys: list[str], breakers: dict[str, int], expected: str) -> None:
    assert provider_health(keys, breakers) == expected


def test_overall_rule() -> None:
    assert overall_status({}, live_instances=0, success_rate=None, requests=0) == (
        "degraded",
        ["no live instance has reported"],
    )
    assert overall_status({"anthropic": "down"}, live_instances=1, success_rate=None, requests=0)[0] == "down"
    assert overall_status({"anthropic": "ok"}, live_instances=1, success_rate=90.0, requests=19) == ("ok", [])
    assert HTTP_STATUS == {"ok": 200, "degraded": 200, "down": 503}
