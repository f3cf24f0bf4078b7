"""A store for the Overview's tests and benchmarks: traffic ending now, a live instance, and realistic alert
episodes in bulk — rules of several kinds on both providers and on keys, starting at random over a range, lasting
from a minute to an hour (so some overlap), a few never firing (pending, then resolved), a few still firing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate import migrations
from pulsegate.core.store import create_store_engine
from pulsegate.core.store.tables import alert_episodes

from .store_rows import insert_instances, insert_tiers, instance_row, rollup_row

#: (rule id, severity, scope): "provider" episodes carry a provider label, "key" ones a key too, "global" none.
RULES = (
    ("success_rate_low", "critical", "provider"),
    ("latency_p95_high", "warning", "provider"),
    ("rate_limited_share_high", "warning", "provider"),
    ("overloaded_share_high", "warning", "provider"),
    ("breaker_open", "critical", "provider"),
    ("fallback_rate_high", "warning", "provider"),
    ("probe_failures", "critical", "key"),
    ("key_unhealthy", "warning", "key"),
    ("cost_per_hour_high", "warning", "global"),
)
PROVIDERS = ("anthropic", "openai")
KEYS = ("Primary", "Backup 1", "Backup 2")


def episode_rows(start: datetime, end: datetime, count: int = 1000, *, seed: int = 16) -> list[dict[str, Any]]:
    """``count`` episodes beginning in ``[start, end)``: one in 50 still firing, one in 20 resolved without ever
    firing; the rest fired 15 s–5 min after going pending and resolved 1–60 min later (clipped to ``end``)."""
    rng = random.Random(seed)
    span_s = (end - start).total_seconds()
    rows = []
    for i in range(count):
        rule, severity, scope = RULES[i % len(RULES)]
        provider = rng.choice(PROVIDERS)
        labels: dict[str, str] = {}
        if scope != "global":
            labels["provider"] = provider
        if scope == "key":
            labels["key_label"] = rng.choice(KEYS)
        pending = start + timedelta(seconds=rng.uniform(0, span_s - 60))
        fired: datetime | None = pending + timedelta(seconds=rng.uniform(15, 300))
        resolved: datetime | None = fired + timedelta(seconds=rng.uniform(60, 3600))
        state = "resolved"
        if i % 20 == 7:  # pending, then resolved without firing
            fired, resolved = None, pending + timedelta(seconds=rng.uniform(10, 120))
        if i % 50 == 3:  # still firing
            resolved, state = None, "firing"
        if fired is not None and fired >= end:
            fired = None
        if resolved is not None and resolved >= end:
            resolved, state = None, "firing" if fired is not None else "pending"
        fingerprint = f"{rule}|{'|'.join(f'{k}={v}' for k, v in sorted(labels.items()))}"
        rows.append(
            {
                "rule_id": rule,
                # an open episode is unique per fingerprint: open ones get their own
                "fingerprint": fingerprint if state == "resolved" else f"{fingerprint}|{i}",
                "labels": labels,
                "severity": severity,
                "state": state,
                "pending_since": pending,
                "fired_at": fired,
                "resolved_at": resolved,
                "value": 1.0,
                "threshold": 1.0,
                "summary": f"{rule} ({', '.join(f'{k}={v}' for k, v in labels.items()) or 'all'})",
            }
        )
    return rows


def insert_episodes(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(alert_episodes.insert(), rows)


#: Failed calls per minute by class in :func:`seed_store`'s traffic (six classes: the errors panel's legend wraps).
ERRORS = {"rate_limited": 2, "overloaded": 3, "server_error": 1, "timeout": 1, "queue_timeout": 2, "auth": 1}


def seed_store(url: str, *, episodes: int, hours: int = 1, now: datetime | None = None) -> datetime:
    """Migrate ``url`` and fill it: ``hours`` of minute traffic ending at ``now`` (default: this minute) on both
    providers (six error classes, fallbacks, probes), one live instance with a nearly constant oldest wait, and
    ``episodes`` alert episodes over the 24 hours before. Returns ``now``."""
    migrations.upgrade(url)
    engine = create_store_engine(url)
    now = now or datetime.now(UTC).replace(second=0, microsecond=0)
    rows = []
    for minute in range(1, hours * 60 + 1):
        bucket = now - timedelta(minutes=minute)
        rows.append(rollup_row(bucket, [300.0] * 30, errors=ERRORS, fallbacks=2, input_tokens=900, output_tokens=90))
        rows.append(rollup_row(bucket, [200.0] * 8, provider="openai", model="gpt-x", key_label="Main"))
        rows.append(rollup_row(bucket, [250.0], source="probe"))
    insert_tiers(engine, rows)
    insert_instances(engine, [instance_row(now, "w1", queue_depth=3, oldest_wait_ms=9980.0)])
    if episodes:
        insert_episodes(engine, episode_rows(now - timedelta(hours=24), now, episodes))
    engine.dispose()
    return now
