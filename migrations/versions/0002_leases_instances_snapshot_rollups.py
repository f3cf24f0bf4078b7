"""10-minute rollup tier, instance registry, snapshot rollups, worker leases, key snapshots by instance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_rollups_10m",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=False, comment="'' for attempts that had no key"),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("successes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("errors", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_rate_limited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_overloaded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_server_error", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_timeout", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_connection", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_auth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_quota", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_bad_request", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_not_found", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_too_large", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_stream_interrupted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_validation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_no_usable_key", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_circuit_open", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_queue_timeout", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_queue_full", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_cancelled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_user_rate_limited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("err_deadline_exceeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fallbacks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("streamed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Float(), server_default="0", nullable=False),
        sa.Column("unpriced", sa.Integer(), server_default="0", nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column("latency_max_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column("ttft_sum_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column("ttft_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("queue_wait_sum_ms", sa.Float(), server_default="0", nullable=False),
        sa.Column("lat_b00", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b01", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b02", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b03", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b04", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b05", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b06", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b07", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b08", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b09", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b10", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b11", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b12", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b13", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b14", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b15", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b16", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b17", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b18", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b19", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b20", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b21", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b22", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b23", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b24", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b25", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b26", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b27", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b28", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b29", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b30", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b31", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b32", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b33", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b34", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b35", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b36", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b37", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b38", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b39", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lat_b40", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket", "provider", "model", "key_label", "source", name=op.f("pk_metric_rollups_10m")
        ),
    )
    with op.batch_alter_table("key_health_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_key_health_snapshots_instance_id_ts"), ["instance_id", "ts"], unique=False)
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="client | worker"),
        sa.Column("host", sa.String(length=128), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "last_seen",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="ts of the latest heartbeat's snapshot rows",
        ),
        sa.CheckConstraint("kind IN ('client', 'worker')", name=op.f("ck_instances_kind")),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instances")),
        comment="one row per instance, upserted by every heartbeat: the current state without scanning snapshots",
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_last_seen"), ["last_seen"], unique=False)

    op.create_table(
        "key_health_rollups",
        sa.Column("tier_s", sa.Integer(), nullable=False, comment="60, 600 or 3600"),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("worst_rank", sa.SmallInteger(), nullable=False, comment="healthy 0 … disabled 4"),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tier_s", "bucket", "provider", "key_label", "instance_id", name=op.f("pk_key_health_rollups")
        ),
    )
    op.create_table(
        "queue_rollups",
        sa.Column("tier_s", sa.Integer(), nullable=False, comment="60, 600 or 3600"),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("max_queue_depth", sa.Integer(), nullable=False),
        sa.Column("max_oldest_wait_ms", sa.Float(), nullable=True),
        sa.Column("breaker_open_samples", sa.Integer(), server_default="0", nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tier_s", "bucket", "provider", "instance_id", name=op.f("pk_queue_rollups")),
    )
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(length=64), nullable=False, comment="what is led, e.g. 'scheduler'"),
        sa.Column("holder", sa.String(length=64), nullable=False, comment="instance id of the leader"),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_leases")),
    )


def downgrade() -> None:
    op.drop_table("metric_rollups_10m")
    with op.batch_alter_table("key_health_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_health_snapshots_instance_id_ts"))
    op.drop_table("worker_leases")
    op.drop_table("queue_rollups")
    op.drop_table("key_health_rollups")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_last_seen"))

    op.drop_table("instances")
