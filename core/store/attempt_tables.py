"""The attempt tables: one raw row per attempt (``api_usage_metrics``) and the rollups written beside it.

Uuid primary keys on the raw table make spool replays idempotent; its few indexes are deliberate (charts read
the rollups). The rollup tiers and the per-user hourly totals are maintained at flush time from the same staged
rows (:mod:`pulsegate.core.store.rollups`).
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.provider import Provider
from pulsegate.core.request import PRIORITY_CLASSES
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.schema import Timestamp, metadata, one_of

#: ``gateway``: a call an app made through the gateway (``app`` names it); ``live``: an in-process call.
SOURCES = ("live", "probe", "gateway")
#: ``cancelled``: the caller went away while the request was at the provider (neither a success nor an error).
OUTCOMES = ("success", "error", "cancelled")
PROVIDERS = tuple(p.value for p in Provider)


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
    sa.Column("app", sa.String(64), comment="the gateway app (or AIClient(app=…)) that made the call"),
    sa.CheckConstraint(one_of("source", SOURCES), name="source"),
    sa.CheckConstraint(one_of("provider", PROVIDERS), name="provider"),
    sa.CheckConstraint(one_of("outcome", OUTCOMES), name="outcome"),
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
