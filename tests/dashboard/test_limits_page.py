"""The Limits page and the Redis-degraded banner through AppTest, against a real migrated SQLite store."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.store.tables import limit_changes
from tests.dashboard.conftest import app, plotly_charts, texts
from tests.queries.data import (
    NOW,
    attempt_row,
    insert,
    insert_attempts,
    insert_instances,
    insert_tiers,
    instance_row,
    limit_change_row,
    roll_up_users,
    rollup_row,
)

REASON = "429 on key 'Primary' (retry-after 2 s)"


def _limits(effective: float, configured: float, reason: str | None) -> dict[str, Any]:
    changed = (NOW - timedelta(minutes=10)).isoformat() if reason else None
    return {"rpm": {"limit": effective, "configured": configured, "reason": reason, "changed_at": changed}}


def seed(engine: sa.Engine, *, degraded: bool = False) -> None:
    beat = NOW - timedelta(seconds=2)
    limiter = {"backend": "redis", "degraded": degraded, "degraded_since": "2026-03-10T11:58:00+00:00"}
    limiter["local_share"] = 0.5
    insert_instances(
        engine,
        [
            instance_row(
                beat,
                "app-1",
                requests_limit=50,
                limit_reason=REASON,
                details={"limits": _limits(50.0, 100.0, REASON), "limiter": limiter},
            ),
            instance_row(
                beat,
                "app-1",
                provider="openai",
                requests_limit=100,
                limit_reason=None,
                details={"limits": _limits(100.0, 100.0, None), "limiter": limiter},
            ),
        ],
    )
    insert(
        engine,
        limit_changes,
        [
            limit_change_row(20, 1, 50.0, before=100.0, reason=REASON),
            limit_change_row(20, 2, 500.0, before=1000.0, reason=REASON, key_label="Primary", configured=None),
            limit_change_row(10, 3, 75.0, before=50.0, reason="recovering: 30 s since the last pushback"),
            limit_change_row(5, 4, 50.0, before=75.0, reason="provider reports 4 % of requests left on key 'Primary'"),
        ],
    )
    zero = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    attempts = [attempt_row(NOW - timedelta(minutes=3), **{**zero, "user_id": "u-a", "input_tokens": 10})]
    attempts += [attempt_row(NOW - timedelta(minutes=2), **{**zero, "user_id": "u-b", "cost_usd": 0.5}) for _ in "abc"]
    refused = {"outcome": "error", "error_class": "user_rate_limited", "key_label": None}
    attempts.append(attempt_row(NOW - timedelta(minutes=1), **zero, user_id="u-b", **refused))
    attempts.append(attempt_row(NOW - timedelta(days=2), **zero, user_id="u-old"))  # outside the range
    insert_attempts(engine, attempts)
    roll_up_users(engine)
    insert_tiers(engine, [rollup_row(NOW - timedelta(minutes=1), [100.0] * 4, errors={"user_rate_limited": 1})])


def test_limits_page_shows_limits_in_force_their_history_and_users(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app("limits").run()
    assert not at.exception
    now, changes, users = (frame.value for frame in at.dataframe)
    assert now[["provider", "kind", "effective", "configured"]].values.tolist() == [
        ["anthropic", "requests per minute (rpm)", 50.0, 100.0],
        ["openai", "requests per minute (rpm)", 100.0, 100.0],
    ]
    assert list(now["reason"]) == [REASON, "at the configured ceiling"]
    assert list(now["share"]) == [0.5, 1.0]

    assert list(changes["effective_after"]) == [50.0, 75.0, 500.0, 50.0]  # newest first
    assert list(changes["key_label"]) == ["(provider)", "(provider)", "Primary", "(provider)"]
    assert changes["reason"].iloc[0] == "provider reports 4 % of requests left on key 'Primary'"

    assert users[["user_id", "calls", "errors", "user_rate_limited"]].values.tolist() == [
        ["user #1", 4, 1, 1],
        ["user #2", 1, 0, 0],
    ]
    assert list(users["cost_usd"]) == [1.5, 0.0]
    assert list(users["input_tokens"]) == [0, 10]
    assert len(plotly_charts(at)) == 2  # the rpm history and the user-rate-limited bars
    body = texts(at)
    assert "1 call(s) refused by per-user or per-feature limits in this range" in body
    assert "to now: the whole hours touching the range's last 24 h, across every provider, model and key" in body
    assert "the range's filters do not apply here" not in body
    assert "Redis is degraded" not in body


def test_the_history_chart_steps_through_each_change_with_its_reason(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app("limits").run()
    figure = plotly_charts(at)[0].proto.spec
    assert '"shape":"hv"' in figure.replace(" ", "")
    assert REASON in figure and "recovering: 30 s since the last pushback" in figure


def test_a_degraded_redis_shows_a_banner_on_every_page(dash_store: sa.Engine) -> None:
    seed(dash_store, degraded=True)
    for page in ("limits", "overview", "keys"):
        at = app(page).run()
        assert not at.exception
        banner = [w.value for w in at.warning if "Redis is degraded" in str(w.value)]
        assert banner == [
            "**Redis is degraded.** These instances run on local state until Redis answers again:\n"
            "- `app-1`: rate limits are local since 2026-03-10 11:58:00 UTC, each limit scaled to 50% locally"
        ], page


def _values(encoded: object) -> list:
    """A trace's x or y: a list, or Plotly's typed array (``{"dtype", "bdata"}``, base64)."""
    import base64

    import numpy as np

    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"]).tolist()
    return list(encoded)


def _traces(chart) -> dict[str, dict]:
    import json

    return {trace["name"]: trace for trace in json.loads(chart.proto.spec)["data"]}


def test_the_history_chart_draws_known_limits_only_each_from_its_instance_start(dash_store: sa.Engine) -> None:
    seed(dash_store)
    insert_instances(dash_store, [instance_row(NOW - timedelta(minutes=30), "app-1")])  # its first heartbeat
    at = app("limits").run()
    assert not at.exception
    traces = _traces(plotly_charts(at)[0])
    # the key limit learned from headers (1000 → 500) is not drawn beside a provider limit of 100
    assert sorted(traces) == [f"anthropic · provider · rpm {part}" for part in ("changes", "configured", "effective")]
    effective = traces["anthropic · provider · rpm effective"]
    assert _values(effective["y"]) == [100.0, 50.0, 75.0, 50.0, 50.0]
    assert effective["x"][0].startswith("2026-03-10T11:30:00")  # the instance's first heartbeat, not the range start
    assert max(_values(effective["y"]) + _values(traces["anthropic · provider · rpm configured"]["y"])) == 100.0
    body = texts(at)
    assert "Not drawn — key limits learned from the provider's headers, with no configured ceiling: " in body
    assert "anthropic · Primary · rpm (their changes are listed below)" in body
    assert "Limits are counted per minute." in body
