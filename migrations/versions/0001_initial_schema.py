"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "alert_episodes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False, comment="rule + label set"),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.CheckConstraint("severity IN ('info', 'warning', 'critical')", name=op.f("ck_alert_episodes_severity")),
        sa.CheckConstraint("state IN ('pending', 'firing', 'resolved')", name=op.f("ck_alert_episodes_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_episodes")),
    )
    with op.batch_alter_table("alert_episodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_episodes_pending_since"), ["pending_since"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_episodes_state_rule_id"), ["state", "rule_id"], unique=False)
        batch_op.create_index(
            "uq_alert_episodes_open_fingerprint",
            ["fingerprint"],
            unique=True,
            postgresql_where=sa.text("state IN ('pending', 'firing')"),
            sqlite_where=sa.text("state IN ('pending', 'firing')"),
        )

    op.create_table(
        "api_usage_metrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False, comment="when the attempt started"),
        sa.Column("call_id", sa.Uuid(), nullable=False, comment="groups the attempts of one generate_response"),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=True),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("http_status", sa.SmallInteger(), nullable=True),
        sa.Column(
            "request_id",
            sa.String(length=128),
            nullable=True,
            comment="the provider's request id, for support tickets",
        ),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("queue_wait_ms", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cache_read_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cache_write_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True, comment="NULL when the model has no price (see unpriced)"),
        sa.Column("unpriced", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("streamed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("feature", sa.String(length=64), nullable=True),
        sa.Column("fell_back_from", sa.String(length=16), nullable=True),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint("outcome IN ('success', 'error')", name=op.f("ck_api_usage_metrics_outcome")),
        sa.CheckConstraint("provider IN ('anthropic', 'openai')", name=op.f("ck_api_usage_metrics_provider")),
        sa.CheckConstraint("source IN ('live', 'probe')", name=op.f("ck_api_usage_metrics_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_usage_metrics")),
    )
    with op.batch_alter_table("api_usage_metrics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_usage_metrics_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_usage_metrics_ts"), ["ts"], unique=False, postgresql_using="brin")

    op.create_table(
        "control_commands",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("key_label", sa.String(length=64), nullable=True),
        sa.Column("target_instance", sa.String(length=64), nullable=True, comment="NULL: every live instance"),
        sa.Column(
            "requested_by",
            sa.String(length=64),
            nullable=False,
            comment="dashboard | api | cli | alert:<rule>",
        ),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "command IN ('clear_queue', 'reset_key', 'disable_key', 'enable_key')",
            name=op.f("ck_control_commands_command"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_commands")),
    )
    with op.batch_alter_table("control_commands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_control_commands_created_at"), ["created_at"], unique=False)

    op.create_table(
        "instance_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="client | worker"),
        sa.Column("host", sa.String(length=128), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("queue_depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("oldest_wait_ms", sa.Float(), nullable=True),
        sa.Column("requests_used", sa.Integer(), nullable=True),
        sa.Column("requests_remaining", sa.Integer(), nullable=True),
        sa.Column("requests_limit", sa.Integer(), nullable=True, comment="effective limit per period"),
        sa.Column("requests_limit_configured", sa.Integer(), nullable=True),
        sa.Column("tokens_used", sa.Integer(), nullable=True),
        sa.Column("tokens_remaining", sa.Integer(), nullable=True),
        sa.Column("tokens_limit", sa.Integer(), nullable=True),
        sa.Column("tokens_limit_configured", sa.Integer(), nullable=True),
        sa.Column(
            "limit_reason",
            sa.String(length=200),
            nullable=True,
            comment="why the effective limit last changed",
        ),
        sa.Column("breaker_state", sa.String(length=16), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint("kind IN ('client', 'worker')", name=op.f("ck_instance_snapshots_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_snapshots")),
    )
    with op.batch_alter_table("instance_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instance_snapshots_instance_id_ts"), ["instance_id", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_instance_snapshots_ts"), ["ts"], unique=False)

    op.create_table(
        "key_health_snapshots",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=16), nullable=False),
        sa.Column("key_masked", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cooldown_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("requests", sa.Integer(), server_default="0", nullable=False, comment="served by this instance"),
        sa.CheckConstraint(
            "status IN ('healthy', 'degraded', 'unhealthy', 'cooldown', 'disabled')",
            name=op.f("ck_key_health_snapshots_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_health_snapshots")),
    )
    with op.batch_alter_table("key_health_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_key_health_snapshots_provider_key_label_ts"),
            ["provider", "key_label", "ts"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_key_health_snapshots_ts"), ["ts"], unique=False)

    _create_rollup_table("metric_rollups_1h")
    _create_rollup_table("metric_rollups_1m")
    op.create_table(
        "probe_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=True),
        sa.Column("key_label", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name=op.f("ck_probe_requests_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_requests")),
    )
    with op.batch_alter_table("probe_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_probe_requests_status_created_at"), ["status", "created_at"], unique=False)

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("episode_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("transition", sa.String(length=16), nullable=False, comment="firing | resolved | repeat | test"),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["episode_id"],
            ["alert_episodes.id"],
            name=op.f("fk_alert_deliveries_episode_id_alert_episodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_deliveries_episode_id"), ["episode_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_ts"), ["ts"], unique=False)

    op.create_table(
        "control_acks",
        sa.Column("command_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("result", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["command_id"],
            ["control_commands.id"],
            name=op.f("fk_control_acks_command_id_control_commands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("command_id", "instance_id", name=op.f("pk_control_acks")),
    )


def downgrade() -> None:

    op.drop_table("control_acks")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_ts"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_episode_id"))

    op.drop_table("alert_deliveries")
    with op.batch_alter_table("probe_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_probe_requests_status_created_at"))

    op.drop_table("probe_requests")
    op.drop_table("metric_rollups_1m")
    op.drop_table("metric_rollups_1h")
    with op.batch_alter_table("key_health_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_key_health_snapshots_ts"))
        batch_op.drop_index(batch_op.f("ix_key_health_snapshots_provider_key_label_ts"))

    op.drop_table("key_health_snapshots")
    with op.batch_alter_table("instance_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_snapshots_ts"))
        batch_op.drop_index(batch_op.f("ix_instance_snapshots_instance_id_ts"))

    op.drop_table("instance_snapshots")
    with op.batch_alter_table("control_commands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_control_commands_created_at"))

    op.drop_table("control_commands")
    with op.batch_alter_table("api_usage_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_usage_metrics_ts"), postgresql_using="brin")
        batch_op.drop_index(batch_op.f("ix_api_usage_metrics_call_id"))

    op.drop_table("api_usage_metrics")
    with op.batch_alter_table("alert_episodes", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alert_episodes_open_fingerprint",
            postgresql_where=sa.text("state IN ('pending', 'firing')"),
            sqlite_where=sa.text("state IN ('pending', 'firing')"),
        )
        batch_op.drop_index(batch_op.f("ix_alert_episodes_state_rule_id"))
        batch_op.drop_index(batch_op.f("ix_alert_episodes_pending_since"))

    op.drop_table("alert_episodes")


def _create_rollup_table(name: str) -> None:
    """The 1-minute and 1-hour tiers share one shape (frozen here as it was at this revision)."""
    op.create_table(
        name,
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
        sa.PrimaryKeyConstraint("bucket", "provider", "model", "key_label", "source", name=op.f(f"pk_{name}")),
    )
