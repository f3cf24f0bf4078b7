"""The schema behaves the same on SQLite and PostgreSQL: types round-trip, constraints hold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.tables import (
    alert_episodes,
    api_usage_metrics,
    control_acks,
    control_commands,
    error_count_column,
    metric_rollups_1m,
)

TS = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)


def _attempt(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "ts": TS,
        "call_id": uuid.uuid4(),
        "attempt": 1,
        "is_final": True,
        "source": "live",
        "provider": "anthropic",
        "model": "claude-sonnet-4-6",
        "key_label": "Primary",
        "key_fingerprint": "0123456789ab",
        "outcome": "success",
        "latency_ms": 412.5,
        "input_tokens": 25,
        "output_tokens": 15,
        "cost_usd": 0.0003,
        "instance_id": "test-instance",
    }
    row.update(overrides)
    return row


def test_attempt_row_round_trips(store: sa.Engine) -> None:
    row = _attempt(ts=TS.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")))
    with store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [row])
    with store.connect() as connection:
        back = connection.execute(sa.select(api_usage_metrics)).mappings().one()
    assert back["id"] == row["id"]
    assert back["call_id"] == row["call_id"]
    assert back["ts"] == TS
    assert back["ts"].tzinfo is not None and back["ts"].utcoffset() == timedelta(0)
    assert back["is_final"] is True
    assert back["unpriced"] is False
    assert back["streamed"] is False
    assert back["cache_read_tokens"] == 0
    assert back["priority"] == 5
    assert back["error_class"] is None


def test_replayed_row_is_rejected_by_its_uuid(store: sa.Engine) -> None:
    row = _attempt()
    with store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [row])
    with pytest.raises(sa.exc.IntegrityError), store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [row])


@pytest.mark.parametrize(
    ("column", "value"),
    [("source", "batch"), ("provider", "gemini"), ("outcome", "maybe")],
)
def test_small_domains_are_checked(store: sa.Engine, column: str, value: str) -> None:
    with pytest.raises(sa.exc.IntegrityError, match=f"ck_api_usage_metrics_{column}"), store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [_attempt(**{column: value})])


def test_every_error_class_fits_and_has_a_rollup_column(store: sa.Engine) -> None:
    rows = [_attempt(outcome="error", error_class=ec.value) for ec in ErrorClass]
    with store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), rows)
        stored = connection.execute(sa.select(api_usage_metrics.c.error_class)).scalars().all()
    assert sorted(stored) == sorted(ec.value for ec in ErrorClass)
    assert all(error_count_column(ec) in metric_rollups_1m.c for ec in ErrorClass)
    assert all(name in metric_rollups_1m.c for name in latency_buckets.COLUMN_NAMES)


def test_naive_datetimes_are_refused(store: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), store.begin() as connection:
        connection.execute(api_usage_metrics.insert(), [_attempt(ts=datetime(2026, 1, 1))])


def test_one_open_alert_episode_per_fingerprint(store: sa.Engine) -> None:
    def episode(state: str) -> dict[str, object]:
        return {
            "rule_id": "success_rate",
            "fingerprint": "fp-1",
            "labels": {"provider": "anthropic"},
            "severity": "critical",
            "state": state,
            "pending_since": TS,
        }

    with store.begin() as connection:
        connection.execute(alert_episodes.insert(), [episode("resolved"), episode("resolved"), episode("firing")])
    with pytest.raises(sa.exc.IntegrityError), store.begin() as connection:
        connection.execute(alert_episodes.insert(), [episode("pending")])
    with store.connect() as connection:
        states = connection.execute(sa.select(alert_episodes.c.state).order_by(alert_episodes.c.id)).scalars().all()
        labels = connection.execute(sa.select(alert_episodes.c.labels).limit(1)).scalar_one()
    assert states == ["resolved", "resolved", "firing"]
    assert labels == {"provider": "anthropic"}


def test_acks_go_with_their_command(store: sa.Engine) -> None:
    with store.begin() as connection:
        command_id = connection.execute(
            control_commands.insert().returning(control_commands.c.id),
            {
                "created_at": TS,
                "command": "clear_queue",
                "provider": "anthropic",
                "requested_by": "cli",
                "expires_at": TS + timedelta(minutes=5),
            },
        ).scalar_one()
        connection.execute(
            control_acks.insert(),
            [
                {"command_id": command_id, "instance_id": "a", "acked_at": TS, "ok": True, "result": "3 cancelled"},
                {"command_id": command_id, "instance_id": "b", "acked_at": TS, "ok": True, "result": "0 cancelled"},
            ],
        )
        connection.execute(control_commands.delete())
        left = connection.execute(sa.select(sa.func.count()).select_from(control_acks)).scalar_one()
    assert left == 0


def test_unknown_command_is_refused(store: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError, match="ck_control_commands_command"), store.begin() as connection:
        connection.execute(
            control_commands.insert(),
            {"created_at": TS, "command": "drop_tables", "requested_by": "cli", "expires_at": TS},
        )
