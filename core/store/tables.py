"""The store's schema, as SQLAlchemy Core tables: the one source the Alembic migrations are checked against.

The tables are defined by topic beside this module — :mod:`~pulsegate.core.store.attempt_tables` (raw attempts and their
rollups), :mod:`~pulsegate.core.store.instance_tables` (heartbeat snapshots and their rollups),
:mod:`~pulsegate.core.store.control_tables` (leases, commands, probe requests),
:mod:`~pulsegate.core.store.alert_tables` — all on the one ``metadata`` of :mod:`pulsegate.core.store.schema` (which
holds the shared conventions). Importing this module registers every table on it, so ``from pulsegate.core.store.tables
import metadata`` (the migrations' target) and :data:`ALL_TABLES` always see the whole schema; callers import any table
from here.
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.store.alert_tables import alert_deliveries, alert_episodes, alert_notifications, alert_silences
from pulsegate.core.store.attempt_tables import (
    METRIC_ROLLUPS,
    OUTCOMES,
    PROVIDERS,
    ROLLUP_TIERS_S,
    SOURCES,
    api_usage_metrics,
    error_count_column,
    metric_rollups_1h,
    metric_rollups_1m,
    metric_rollups_10m,
    priority_count_column,
    user_rollups_1h,
)
from pulsegate.core.store.control_tables import control_acks, control_commands, probe_requests, worker_leases
from pulsegate.core.store.gateway_tables import gateway_apps, gateway_tokens
from pulsegate.core.store.instance_tables import (
    SNAPSHOT_TIERS_S,
    instance_snapshots,
    instances,
    key_health_rollups,
    key_health_snapshots,
    limit_changes,
    queue_rollups,
)
from pulsegate.core.store.schema import NAMING_CONVENTION, BigId, Timestamp, UTCDateTime, metadata

__all__ = [
    "ALL_TABLES",
    "METRIC_ROLLUPS",
    "NAMING_CONVENTION",
    "OUTCOMES",
    "PROVIDERS",
    "ROLLUP_TIERS_S",
    "SNAPSHOT_TIERS_S",
    "SOURCES",
    "BigId",
    "Timestamp",
    "UTCDateTime",
    "alert_deliveries",
    "alert_episodes",
    "alert_notifications",
    "alert_silences",
    "api_usage_metrics",
    "control_acks",
    "control_commands",
    "error_count_column",
    "gateway_apps",
    "gateway_tokens",
    "instance_snapshots",
    "instances",
    "key_health_rollups",
    "key_health_snapshots",
    "limit_changes",
    "metadata",
    "metric_rollups_1h",
    "metric_rollups_1m",
    "metric_rollups_10m",
    "priority_count_column",
    "probe_requests",
    "queue_rollups",
    "user_rollups_1h",
    "worker_leases",
]

#: Every table, in an order safe for TRUNCATE / DELETE (children first).
ALL_TABLES: tuple[sa.Table, ...] = tuple(reversed(metadata.sorted_tables))
