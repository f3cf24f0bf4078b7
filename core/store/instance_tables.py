"""The instance tables: heartbeat snapshots of each running instance, its keys and limits, and their rollups.

Written by every instance's heartbeat (:mod:`pulsegate.core.ops.heartbeat`); the queue-depth and key-health charts read
the snapshot rollups, never raw snapshots.
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.store.attempt_tables import ROLLUP_TIERS_S
from pulsegate.core.store.schema import BigId, Timestamp, metadata, one_of

#: What runs an instance: an app server's AIClient, the worker, or a gateway process.
INSTANCE_KINDS = ("client", "worker", "gateway")

instance_snapshots = sa.Table(
    "instance_snapshots",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ts", Timestamp, nullable=False),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, comment="client | worker | gateway"),
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
    sa.CheckConstraint(one_of("kind", INSTANCE_KINDS), name="kind"),
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
    sa.CheckConstraint(one_of("status", ("healthy", "degraded", "unhealthy", "cooldown", "disabled")), name="status"),
    sa.Index(None, "ts"),
    sa.Index(None, "provider", "key_label", "ts"),
    sa.Index(None, "instance_id", "ts"),
)

instances = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False, comment="client | worker | gateway"),
    sa.Column("host", sa.String(128)),
    sa.Column("pid", sa.Integer()),
    sa.Column("first_seen", Timestamp, nullable=False),
    sa.Column("last_seen", Timestamp, nullable=False, comment="ts of the latest heartbeat's snapshot rows"),
    sa.CheckConstraint(one_of("kind", INSTANCE_KINDS), name="kind"),
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
    sa.CheckConstraint(one_of("kind", ("rpm", "tpm")), name="kind"),
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
