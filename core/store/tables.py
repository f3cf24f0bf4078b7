"""The store's schema, as SQLAlchemy Core tables: the one source the Alembic migrations are checked against.

Conventions: every constraint is named (SQLite batch migrations can only drop named constraints); uuid primary
keys on the raw table make spool replays idempotent; enumerations are plain strings (a CHECK on small, stable
domains only — adding an error class must never rewrite the raw table); times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from core.errors import ErrorClass
from core.provider import Provider
from core.request import PRIORITY_CLASSES
from core.store import latency_buckets

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: An auto-increment integer id on both databases (SQLite only auto-increments ``INTEGER PRIMARY KEY``).
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both databases (SQLite stores text and would hand back naive values)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store takes timezone-aware UTC times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = UTCDateTime()

SOURCES = ("live", "probe")
#: ``cancelled``: the caller went away while the request was at the provider (neither a success nor an error).
OUTCOMES = ("success", "error", "cancelled")
PROVIDERS = tuple(p.value for p in Provider)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def priority_count_column(priority_class: str) -> str:
    """Rollup column counting the calls of one priority class, e.g. ``calls_user_facing``."""
    return f"calls_{priority_class}"


def error_count_column(error_class: ErrorClass) -> str:
    """Rollup column counting one error class, e.g. ``err_rate_limited``."""
    return f"err_{error_class.value}"


api_usage_metrics = sa.Table(
    "api_usage_metrics",
    metadata,
    sa.Column("id", sa.Uuid(), primary_key=True),
    sa.Column("ts", Timestamp, nullable=False, comment="when the attempt started"),
    sa.Column("call_id", sa.Uuid(), nullable=False, comment="groups the attempts of one generate_response"),
    sa.Column("attempt", sa.SmallInteger(), nullable=False),
    sa.Column("is_final", sa.Boolean(), nullable=False),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("key_label", sa.String(64)),
    sa.Column("key_fingerprint", sa.String(16)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("error_class", sa.String(32)),
    sa.Column("http_status", sa.SmallInteger()),
    sa.Column("request_id", sa.String(128), comment="the provider's request id, for support tickets"),
    sa.Column("latency_ms", sa.Float(), nullable=False),
    sa.Column("ttft_ms", sa.Float()),
    sa.Column("queue_wait_ms", sa.Float()),
    sa.Column("input_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cache_read_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Float(), comment="NULL when the model has no price (see unpriced)"),
    sa.Column("unpriced", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column(
        "usage_estimated",
        sa.Boolean(),
        nullable=False,
        server_default=sa.false(),
        comment="tokens (and so cost) partly estimated: the attempt ended before the provider reported its usage",
    ),
    sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="5"),
    sa.Column("streamed", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("user_id", sa.String(128)),
    sa.Column("feature", sa.String(64)),
    sa.Column("fell_back_from", sa.String(16)),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.CheckConstraint(_in("source", SOURCES), name="source"),
    sa.CheckConstraint(_in("provider", PROVIDERS), name="provider"),
    sa.CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
    # Few indexes on purpose: charts read rollups, so every raw index is ingest cost with no reader.
    sa.Index(None, "ts", postgresql_using="brin"),
    sa.Index(None, "call_id"),
    # The probe_failures rule reads a key's probes since its last success every 30 s — up to a day of them. Partial:
    # only probe rows (a few per key per probe interval) are indexed, so live ingest pays nothing for it; covering,
    # so the streak is counted from the index alone.
    sa.Index(
        "ix_api_usage_metrics_probe_ts",
        "provider",
        "key_label",
        "ts",
        "outcome",
        postgresql_where=sa.text("source = 'probe'"),
        sqlite_where=sa.text("source = 'probe'"),
    ),
)


def _rollup_table(name: str) -> sa.Table:
    counts = [
        sa.Column("calls", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("successes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("errors", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cancelled", sa.Integer(), nullable=False, server_default="0"),
        *(sa.Column(error_count_column(ec), sa.Integer(), nullable=False, server_default="0") for ec in ErrorClass),
        sa.Column("fallbacks", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("streamed", sa.Integer(), nullable=False, server_default="0"),
        *(
            sa.Column(priority_count_column(name), sa.Integer(), nullable=False, server_default="0")
            for name, _ in PRIORITY_CLASSES
        ),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("unpriced", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("usage_estimated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False, server_default="0"),
        sa.Column("latency_max_ms", sa.Float(), nullable=False, server_default="0"),
        sa.Column("ttft_sum_ms", sa.Float(), nullable=False, server_default="0"),
        sa.Column("ttft_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("queue_wait_sum_ms", sa.Float(), nullable=False, server_default="0"),
        *(
            sa.Column(column, sa.Integer(), nullable=False, server_default="0")
            for column in latency_buckets.COLUMN_NAMES
        ),
    ]
    return sa.Table(
        name,
        metadata,
        sa.Column("bucket", Timestamp, primary_key=True),
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("key_label", sa.String(64), primary_key=True, comment="'' for attempts that had no key"),
        sa.Column("source", sa.String(8), primary_key=True),
        *counts,
    )


metric_rollups_1m = _rollup_table("metric_rollups_1m")
metric_rollups_10m = _rollup_table("metric_rollups_10m")
metric_rollups_1h = _rollup_table("metric_rollups_1h")
#: Rollup tier width (seconds) → table. Each tier is maintained at flush time from the same staged rows.
METRIC_ROLLUPS: dict[int, sa.Table] = {60: metric_rollups_1m, 600: metric_rollups_10m, 3600: metric_rollups_1h}
ROLLUP_TIERS_S: tuple[int, ...] = tuple(METRIC_ROLLUPS)

#: Per-user hourly totals for the Limits page's top-users table, written at flush time from the same staged rows as
#: the metric rollups. Keyed by hour and user only: a user dimension times provider × model × key × source hardly
#: compresses at all (a user's dozen calls an hour spread over as many combinations — 42,869 such rows against 59,536
#: raw ones in an hour of the 10 M-row benchmark's data), so filtered top-users tables read the raw rows instead.
#: Attempts without a user id are not rolled up.
user_rollups_1h = sa.Table(
    "user_rollups_1h",
    metadata,
    sa.Column("bucket", Timestamp, primary_key=True),
    sa.Column("user_id", sa.String(128), primary_key=True, comment="as stored: hashed under HASH_USER_IDS"),
    sa.Column("calls", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("errors", sa.Integer(), nullable=False, server_default="0", comment="outcome 'error' (not cancelled)"),
    sa.Column("user_rate_limited", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Float(), nullable=False, server_default="0"),
)

instance_snapshots = sa.Table(
    "instance_snapshots",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", Timestamp, nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, comment="client | worker"),
    sa.Column("host", sa.String(128)),
    sa.Column("pid", sa.Integer()),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("queue_depth", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("oldest_wait_ms", sa.Float()),
    sa.Column("requests_used", sa.Integer()),
    sa.Column("requests_remaining", sa.Integer()),
    sa.Column("requests_limit", sa.Integer(), comment="effective limit per period"),
    sa.Column("requests_limit_configured", sa.Integer()),
    sa.Column("tokens_used", sa.Integer()),
    sa.Column("tokens_remaining", sa.Integer()),
    sa.Column("tokens_limit", sa.Integer()),
    sa.Column("tokens_limit_configured", sa.Integer()),
    sa.Column("limit_reason", sa.String(200), comment="why the effective limit last changed"),
    sa.Column("breaker_state", sa.String(16)),
    sa.Column("details", sa.JSON()),
    sa.CheckConstraint(_in("kind", ("client", "worker")), name="kind"),
    sa.Index(None, "ts"),
    sa.Index(None, "instance_id", "ts"),
)

key_health_snapshots = sa.Table(
    "key_health_snapshots",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", Timestamp, nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("key_label", sa.String(64), nullable=False),
    sa.Column("key_fingerprint", sa.String(16), nullable=False),
    sa.Column("key_masked", sa.String(32), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cooldown_until", Timestamp),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("disabled_reason", sa.String(200)),
    sa.Column("requests", sa.Integer(), nullable=False, server_default="0", comment="served by this instance"),
    sa.CheckConstraint(_in("status", ("healthy", "degraded", "unhealthy", "cooldown", "disabled")), name="status"),
    sa.Index(None, "ts"),
    sa.Index(None, "provider", "key_label", "ts"),
    sa.Index(None, "instance_id", "ts"),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, comment="client | worker"),
    sa.Column("host", sa.String(128)),
    sa.Column("pid", sa.Integer()),
    sa.Column("first_seen", Timestamp, nullable=False),
    sa.Column("last_seen", Timestamp, nullable=False, comment="ts of the latest heartbeat's snapshot rows"),
    sa.CheckConstraint(_in("kind", ("client", "worker")), name="kind"),
    sa.Index(None, "last_seen"),
    comment="one row per instance, upserted by every heartbeat: the current state without scanning snapshots",
)

limit_changes = sa.Table(
    "limit_changes",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", Timestamp, nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column(
        "seq", sa.BigInteger(), nullable=False, comment="per instance, increasing: heartbeats de-duplicate on it"
    ),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("key_label", sa.String(64), comment="NULL: the provider's own limit"),
    sa.Column("kind", sa.String(8), nullable=False, comment="rpm | tpm"),
    sa.Column("configured", sa.Float(), comment="the ceiling; NULL for a key limit learned from headers"),
    sa.Column("effective_before", sa.Float(), nullable=False),
    sa.Column("effective_after", sa.Float(), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.CheckConstraint(_in("kind", ("rpm", "tpm")), name="kind"),
    sa.UniqueConstraint("instance_id", "seq"),
    sa.Index(None, "ts"),
    comment="every change of an effective (self-tuned) limit, written by the heartbeat",
)

#: Snapshot rollup tiers (seconds), the same as the metric tiers: the queue-depth and key-health charts read
#: these, never raw snapshots.
SNAPSHOT_TIERS_S: tuple[int, ...] = ROLLUP_TIERS_S

queue_rollups = sa.Table(
    "queue_rollups",
    metadata,
    sa.Column("tier_s", sa.Integer(), primary_key=True, comment="60, 600 or 3600"),
    sa.Column("bucket", Timestamp, primary_key=True),
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("max_queue_depth", sa.Integer(), nullable=False),
    sa.Column("max_oldest_wait_ms", sa.Float()),
    sa.Column("breaker_open_samples", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("samples", sa.Integer(), nullable=False),
)

key_health_rollups = sa.Table(
    "key_health_rollups",
    metadata,
    sa.Column("tier_s", sa.Integer(), primary_key=True, comment="60, 600 or 3600"),
    sa.Column("bucket", Timestamp, primary_key=True),
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("key_label", sa.String(64), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("min_score", sa.Float(), nullable=False),
    sa.Column("worst_rank", sa.SmallInteger(), nullable=False, comment="healthy 0 … disabled 4"),
    sa.Column("samples", sa.Integer(), nullable=False),
)

worker_leases = sa.Table(
    "worker_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True, comment="what is led, e.g. 'scheduler'"),
    sa.Column("holder", sa.String(64), nullable=False, comment="instance id of the leader"),
    sa.Column("acquired_at", Timestamp, nullable=False),
    sa.Column("renewed_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

control_commands = sa.Table(
    "control_commands",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("provider", sa.String(16)),
    sa.Column("key_label", sa.String(64)),
    sa.Column("target_instance", sa.String(64), comment="NULL: every live instance"),
    sa.Column("requested_by", sa.String(64), nullable=False, comment="dashboard | api | cli | alert:<rule>"),
    sa.Column("args", sa.JSON()),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.CheckConstraint(_in("command", ("clear_queue", "reset_key", "disable_key", "enable_key")), name="command"),
    sa.Index(None, "created_at"),
)

control_acks = sa.Table(
    "control_acks",
    metadata,
    sa.Column("command_id", BigId, sa.ForeignKey("control_commands.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("acked_at", Timestamp, nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("result", sa.String(500)),
)

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
    sa.CheckConstraint(_in("state", ("pending", "firing", "resolved")), name="state"),
    sa.CheckConstraint(_in("severity", ("info", "warning", "critical")), name="severity"),
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
    sa.CheckConstraint(_in("transition", ("firing", "resolved", "repeat", "test")), name="transition"),
    sa.CheckConstraint(_in("status", ("pending", "delivered", "failed")), name="status"),
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

probe_requests = sa.Table(
    "probe_requests",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(16)),
    sa.Column("key_label", sa.String(64)),
    sa.Column("model", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Column("result", sa.JSON()),
    sa.CheckConstraint(_in("status", ("pending", "running", "done", "failed")), name="status"),
    sa.Index(None, "status", "created_at"),
)

#: Every table, in an order safe for TRUNCATE / DELETE (children first).
ALL_TABLES: tuple[sa.Table, ...] = tuple(reversed(metadata.sorted_tables))
