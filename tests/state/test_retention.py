"""Retention removes exactly the expired rows of each table, in batches, and keeps the rest."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.clock import ManualClock
from pulsegate.core.store.retention import NOT_PRUNED, prune, retention_plan
from pulsegate.core.store.tables import (
    alert_deliveries,
    alert_episodes,
    alert_notifications,
    alert_silences,
    api_usage_metrics,
    control_acks,
    control_commands,
    instance_snapshots,
    instances,
    key_health_rollups,
    key_health_snapshots,
    limit_changes,
    metadata,
    metric_rollups_1h,
    metric_rollups_1m,
    metric_rollups_10m,
    probe_requests,
    queue_rollups,
    user_rollups_1h,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _attempt(ts: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "ts": ts,
        "call_id": uuid.uuid4(),
        "attempt": 1,
        "is_final": True,
        "source": "live",
        "provider": "anthropic",
        "model": "m",
        "outcome": "success",
        "latency_ms": 1.0,
        "instance_id": "i",
    }


def _rollup(bucket: datetime, key: str) -> dict[str, Any]:
    return {"bucket": bucket, "provider": "openai", "model": "m", "key_label": key, "source": "live"}


def _ages(days: int, old: int, young: int) -> list[datetime]:
    """``old`` times just past the cutoff and ``young`` just inside it."""
    cutoff = NOW - timedelta(days=days)
    return [cutoff - SECOND * (i + 1) for i in range(old)] + [cutoff + SECOND * i for i in range(young)]


def _count(connection: sa.Connection, table: sa.Table) -> int:
    return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_prune_removes_exactly_the_expired_rows_in_batches(store) -> None:
    with store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [_attempt(t) for t in _ages(14, 23, 4)])
        connection.execute(metric_rollups_1m.insert(), [_rollup(t, f"k{i}") for i, t in enumerate(_ages(30, 7, 3))])
        connection.execute(metric_rollups_1h.insert(), [_rollup(t, f"k{i}") for i, t in enumerate(_ages(400, 2, 5))])
        connection.execute(metric_rollups_10m.insert(), [_rollup(t, f"k{i}") for i, t in enumerate(_ages(30, 4, 1))])
        # user hours: one goes when it has ended by the raw cutoff (14 days), i.e. all of its raw rows have gone
        raw_cutoff = NOW - timedelta(days=14)
        connection.execute(
            user_rollups_1h.insert(),
            [{"bucket": raw_cutoff + timedelta(hours=h), "user_id": "u", "calls": 1} for h in (-2, -1, 0, 1)],
        )
        # snapshot rollups: each tier kept as long as the metric tier of its width (minute tier: 7 days)
        queue = (
            [(60, t) for t in _ages(7, 2, 1)]
            + [(600, t) for t in _ages(30, 1, 2)]
            + [(3600, t) for t in _ages(400, 3, 1)]
        )
        connection.execute(
            queue_rollups.insert(),
            [
                {
                    "tier_s": tier,
                    "bucket": t,
                    "provider": "openai",
                    "instance_id": "i",
                    "max_queue_depth": 0,
                    "samples": 1,
                }
                for tier, t in queue
            ],
        )
        keys = (
            [(60, t) for t in _ages(7, 1, 1)]
            + [(600, t) for t in _ages(30, 2, 0)]
            + [(3600, t) for t in _ages(400, 0, 2)]
        )
        connection.execute(
            key_health_rollups.insert(),
            [
                {
                    "tier_s": tier,
                    "bucket": t,
                    "provider": "openai",
                    "key_label": "Primary",
                    "instance_id": "i",
                    "min_score": 1.0,
                    "worst_rank": 0,
                    "samples": 1,
                }
                for tier, t in keys
            ],
        )
        connection.execute(
            instances.insert(),
            [
                {"instance_id": f"i{n}", "kind": "client", "first_seen": t, "last_seen": t}
                for n, t in enumerate(_ages(7, 2, 3))
            ],
        )
        connection.execute(
            instance_snapshots.insert(),
            [{"ts": t, "instance_id": "i", "kind": "client", "provider": "openai"} for t in _ages(7, 6, 2)],
        )
        connection.execute(
            key_health_snapshots.insert(),
            [
                {
                    "ts": t,
                    "instance_id": "i",
                    "provider": "openai",
                    "key_label": "Primary",
                    "key_fingerprint": "f",
                    "key_masked": "m",
                    "score": 100.0,
                    "status": "healthy",
                }
                for t in _ages(7, 3, 3)
            ],
        )
        command_times = _ages(30, 3, 2)
        ids = []
        for t in command_times:
            ids.append(
                connection.execute(
                    control_commands.insert()
                    .values(
                        created_at=t, command="clear_queue", requested_by="cli", expires_at=t + timedelta(minutes=5)
                    )
                    .returning(control_commands.c.id)
                ).scalar_one()
            )
        # the old commands' acks came a little later — one of them after the cutoff: still removed with its command
        acks = [
            {"command_id": ids[0], "instance_id": "a", "acked_at": command_times[0] + SECOND * 5, "ok": True},
            {"command_id": ids[0], "instance_id": "b", "acked_at": command_times[0] + SECOND * 2, "ok": True},
            {"command_id": ids[1], "instance_id": "a", "acked_at": command_times[1], "ok": True},
            {"command_id": ids[3], "instance_id": "a", "acked_at": command_times[3], "ok": True},
            {"command_id": ids[4], "instance_id": "a", "acked_at": command_times[4], "ok": True},
            {"command_id": ids[4], "instance_id": "b", "acked_at": command_times[4], "ok": False},
        ]
        connection.execute(control_acks.insert(), acks)
        connection.execute(probe_requests.insert(), [{"created_at": t, "requested_by": "ui"} for t in _ages(30, 4, 1)])
        # episodes: open ones (however old) and young resolved ones stay; one resolved long ago stays while a
        # pending outbox row still names it
        cutoff = NOW - timedelta(days=30)
        episode_rows = [
            ("firing", NOW - timedelta(days=100), None),
            ("pending", NOW - timedelta(days=60), None),
            ("resolved", cutoff - timedelta(days=1), cutoff - SECOND),
            ("resolved", cutoff - timedelta(days=20), cutoff - timedelta(days=10)),
            ("resolved", cutoff - timedelta(days=1), cutoff),
            ("resolved", cutoff - timedelta(days=90), cutoff - timedelta(days=60)),
        ]
        episodes = [
            connection.execute(
                alert_episodes.insert()
                .values(
                    rule_id="r",
                    fingerprint=f"f{n}",
                    labels={},
                    severity="info",
                    state=state,
                    pending_since=since,
                    fired_at=None if state == "pending" else since,
                    resolved_at=resolved,
                )
                .returning(alert_episodes.c.id)
            ).scalar_one()
            for n, (state, since, resolved) in enumerate(episode_rows)
        ]
        episode, held = episodes[0], episodes[5]
        connection.execute(
            alert_deliveries.insert(),
            [
                {
                    "episode_id": episode,
                    "ts": t,
                    "channel": "c",
                    "transition": "firing",
                    "attempt": 1,
                    "delivered": True,
                }
                for t in _ages(30, 5, 2)
            ],
        )

        # the outbox: old rows go once delivered or failed for good; a pending one is an alert not yet sent
        statuses = ["delivered", "failed", "delivered", "pending", "pending", "delivered", "pending"]
        connection.execute(
            alert_notifications.insert(),
            [
                {
                    "created_at": t,
                    "channel": "c",
                    "transition": "firing",
                    "group_key": "g",
                    "episode_ids": [held] if status == "pending" else [episode],
                    "message": {},
                    "status": status,
                    "next_attempt_at": t,
                }
                for t, status in zip(_ages(30, 5, 2), statuses, strict=True)
            ],
        )
        # silences: ended over 30 days ago (at ends_at, or expired early) go; active or recently ended ones stay
        later = NOW + timedelta(days=300)
        silences = [(t, t, None) for t in _ages(30, 1, 2)] + [
            (cutoff - timedelta(days=2), later, cutoff - SECOND),
            (cutoff - timedelta(days=2), later, cutoff + SECOND),
            (NOW - timedelta(days=90), later, None),
        ]
        connection.execute(
            alert_silences.insert(),
            [
                {"created_at": c, "created_by": "cli", "matchers": {}, "starts_at": c, "ends_at": e, "expired_at": x}
                for c, e, x in silences
            ],
        )
        connection.execute(
            limit_changes.insert(),
            [
                {
                    "ts": t,
                    "instance_id": "i",
                    "seq": seq,
                    "provider": "anthropic",
                    "kind": "rpm",
                    "configured": 50.0,
                    "effective_before": 50.0,
                    "effective_after": 25.0,
                    "reason": "429",
                }
                for seq, t in enumerate(_ages(30, 2, 3))
            ],
        )

    report = prune(store, NOW, retention_days=14, batch_size=5)

    assert report.deleted == {
        "api_usage_metrics": 23,
        "metric_rollups_1m": 7,
        "metric_rollups_10m": 4,
        "metric_rollups_1h": 2,
        "user_rollups_1h": 2,
        "instance_snapshots": 6,
        "key_health_snapshots": 3,
        "queue_rollups": 6,
        "key_health_rollups": 3,
        "instances": 2,
        "control_acks": 3,
        "control_commands": 3,
        "probe_requests": 4,
        "alert_deliveries": 5,
        "alert_notifications": 3,
        "alert_episodes": 2,
        "alert_silences": 2,
        "limit_changes": 2,
    }
    # ceil(n / 5) full batches, plus one empty batch when n is a multiple of 5 (it cannot know it was the last)
    assert report.batches == {
        "api_usage_metrics": 5,
        "metric_rollups_1m": 2,
        "metric_rollups_10m": 1,
        "metric_rollups_1h": 1,
        "user_rollups_1h": 1,
        "instance_snapshots": 2,
        "key_health_snapshots": 1,
        "queue_rollups": 2,
        "key_health_rollups": 1,
        "instances": 1,
        "control_acks": 1,
        "control_commands": 1,
        "probe_requests": 1,
        "alert_deliveries": 2,
        "alert_notifications": 1,
        "alert_episodes": 1,
        "alert_silences": 1,
        "limit_changes": 1,
    }
    with store.connect() as connection:
        kept = {
            table.name: _count(connection, table)
            for table in (
                api_usage_metrics,
                metric_rollups_1m,
                metric_rollups_10m,
                metric_rollups_1h,
                user_rollups_1h,
                instance_snapshots,
                key_health_snapshots,
                queue_rollups,
                key_health_rollups,
                instances,
                control_acks,
                control_commands,
                probe_requests,
                alert_deliveries,
                alert_episodes,
                alert_notifications,
                alert_silences,
                limit_changes,
            )
        }
        assert kept == {
            "api_usage_metrics": 4,
            "metric_rollups_1m": 3,
            "metric_rollups_10m": 1,
            "metric_rollups_1h": 5,
            "user_rollups_1h": 2,
            "instance_snapshots": 2,
            "key_health_snapshots": 3,
            "queue_rollups": 4,
            "key_health_rollups": 3,
            "instances": 3,
            "control_acks": 3,
            "control_commands": 2,
            "probe_requests": 1,
            "alert_deliveries": 2,
            "alert_episodes": 4,
            "alert_notifications": 4,
            "alert_silences": 4,
            "limit_changes": 3,
        }
        oldest = connection.execute(sa.select(sa.func.min(api_usage_metrics.c.ts, type_=api_usage_metrics.c.ts.type)))
        assert oldest.scalar_one() == NOW - timedelta(days=14)
        assert sorted(connection.execute(sa.select(control_commands.c.id)).scalars()) == ids[3:]
        kept_episodes = connection.execute(sa.select(alert_episodes.c.id).order_by(alert_episodes.c.id)).scalars()
        assert list(kept_episodes) == [episodes[0], episodes[1], episodes[4], held]
        outbox = connection.execute(
            sa.select(alert_notifications.c.status, sa.func.count()).group_by(alert_notifications.c.status)
        )
        assert dict(outbox.all()) == {"pending": 3, "delivered": 1}

    again = prune(store, NOW, retention_days=14, batch_size=5)
    assert again.total == 0 and set(again.batches.values()) == {1}


def test_default_batch_size_is_one_transaction_for_small_tables(store) -> None:
    with store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [_attempt(t) for t in _ages(3, 10, 1)])
    report = prune(store, NOW, retention_days=3)
    assert report.deleted["api_usage_metrics"] == 10 and report.batches["api_usage_metrics"] == 1


def test_every_table_that_grows_has_a_retention_rule() -> None:
    """A new table must be given a retention (or be declared as not growing): none is forgotten."""
    planned = {table.name for table, _ in retention_plan(NOW, 14)}
    assert planned | NOT_PRUNED == set(metadata.tables)
    assert not planned & NOT_PRUNED


def test_an_unsent_alert_and_its_episode_outlive_their_retention_until_sent(store) -> None:
    """Nothing is lost: a pending outbox row and the episode it names stay past 30 days; once the row is delivered,
    the next prune takes both."""
    clock = ManualClock(NOW)
    old = NOW - timedelta(days=45)
    with store.begin() as connection:
        episode = connection.execute(
            alert_episodes.insert()
            .values(
                rule_id="r",
                fingerprint="f",
                labels={},
                severity="critical",
                state="resolved",
                pending_since=old,
                fired_at=old,
                resolved_at=old,
            )
            .returning(alert_episodes.c.id)
        ).scalar_one()
        outbox = connection.execute(
            alert_notifications.insert()
            .values(
                created_at=old,
                channel="ops",
                transition="resolved",
                group_key="g",
                episode_ids=[episode],
                message={},
                next_attempt_at=old,
            )
            .returning(alert_notifications.c.id)
        ).scalar_one()

    assert prune(store, clock.now()).total == 0

    with store.begin() as connection:
        connection.execute(
            alert_notifications.update().where(alert_notifications.c.id == outbox).values(status="delivered")
        )
    clock.advance(1.0)
    report = prune(store, clock.now())
    assert {name: n for name, n in report.deleted.items() if n} == {"alert_notifications": 1, "alert_episodes": 1}
    with store.connect() as connection:
        assert _count(connection, alert_episodes) == 0 and _count(connection, alert_notifications) == 0
