"""The alert tables: episodes, the outbox of notifications, silences and the log of delivery attempts.

The episode change and its outbox rows are written in one transaction (:mod:`pulsegate.core.alerts.evaluator`); the
dispatcher (:mod:`pulsegate.core.alerts.delivery`) only updates the outbox and appends to the delivery log.
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.store.schema import BigId, Timestamp, metadata, one_of

alert_episodes = sa.Table(
    "alert_episodes",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False, comment="rule + label set"),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("pending_since", Timestamp, nullable=False),
    sa.Column("fired_at", Timestamp),
    sa.Column("resolved_at", Timestamp),
    sa.Column("last_notified_at", Timestamp),
    sa.Column("clear_since", Timestamp, comment="firing, but back past the resolve threshold since (keep_firing_for)"),
    sa.Column("value", sa.Float()),
    sa.Column("threshold", sa.Float()),
    sa.Column("summary", sa.String(500)),
    sa.CheckConstraint(one_of("state", ("pending", "firing", "resolved")), name="state"),
    sa.CheckConstraint(one_of("severity", ("info", "warning", "critical")), name="severity"),
    # The database, not a process, guarantees one open episode per fingerprint: several workers never double-fire.
    sa.Index(
        "uq_alert_episodes_open_fingerprint",
        "fingerprint",
        unique=True,
        postgresql_where=sa.text("state IN ('pending', 'firing')"),
        sqlite_where=sa.text("state IN ('pending', 'firing')"),
    ),
    sa.Index(None, "state", "rule_id"),
    sa.Index(None, "pending_since"),
)

alert_notifications = sa.Table(
    "alert_notifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("channel", sa.String(64), nullable=False, comment="channel name from the alert config"),
    sa.Column("transition", sa.String(16), nullable=False),
    sa.Column("group_key", sa.String(200), nullable=False, comment="alerts grouped into one message share it"),
    sa.Column("episode_ids", sa.JSON(), nullable=False),
    sa.Column("message", sa.JSON(), nullable=False, comment="the secret-free alert data a channel renders"),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("delivered_at", Timestamp),
    sa.Column("last_error", sa.String(500)),
    sa.CheckConstraint(one_of("transition", ("firing", "resolved", "repeat", "test")), name="transition"),
    sa.CheckConstraint(one_of("status", ("pending", "delivered", "failed")), name="status"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "created_at"),
    comment="outbox: one row per message per channel, written with the episode change, sent until delivered",
)

alert_silences = sa.Table(
    "alert_silences",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False, comment="dashboard | api | cli"),
    sa.Column("matchers", sa.JSON(), nullable=False, comment="label -> exact value; 'rule_id' matches the rule"),
    sa.Column("starts_at", Timestamp, nullable=False),
    sa.Column("ends_at", Timestamp, nullable=False),
    sa.Column("expired_at", Timestamp, comment="set when expired early"),
    sa.Column("comment", sa.String(500)),
    sa.Index(None, "ends_at"),
)

alert_deliveries = sa.Table(
    "alert_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("episode_id", BigId, sa.ForeignKey("alert_episodes.id", ondelete="CASCADE")),
    sa.Column("notification_id", BigId, sa.ForeignKey("alert_notifications.id", ondelete="CASCADE"), nullable=True),
    sa.Column("ts", Timestamp, nullable=False),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("transition", sa.String(16), nullable=False, comment="firing | resolved | repeat | test"),
    sa.Column("attempt", sa.SmallInteger(), nullable=False),
    sa.Column("delivered", sa.Boolean(), nullable=False),
    sa.Column("status_code", sa.SmallInteger()),
    sa.Column("error", sa.String(500)),
    sa.Index(None, "ts"),
    sa.Index(None, "episode_id"),
    sa.Index(None, "notification_id"),
    sa.Index(None, "channel", "ts"),
)
