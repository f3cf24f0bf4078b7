"""Read side of the store for the dashboard and the API: pandas DataFrames from parameterised SQL.

Charts read the rollup tiers and the snapshot tables only; :func:`recent_attempts` is the one query on raw rows.
Imports pandas: never import this package from ``core/__init__`` or the client.
"""

from pulsegate.core.queries.attempts import ATTEMPT_COLUMNS, recent_attempts
from pulsegate.core.queries.filters import QueryFilter, QueryFilterError
from pulsegate.core.queries.keys import (
    KeyHealthView,
    current_queues,
    latest_instances,
    latest_key_health,
    stale_instances,
)
from pulsegate.core.queries.kpis import KPI_NAMES, kpi_summary, range_totals
from pulsegate.core.queries.probes import LastProbe, last_probes
from pulsegate.core.queries.timeseries import (
    KEY_HEALTH_COLUMNS,
    QUEUE_COLUMNS,
    TRAFFIC_COLUMNS,
    key_health_series,
    queue_depth_series,
    traffic_series,
)

__all__ = [
    "ATTEMPT_COLUMNS",
    "KEY_HEALTH_COLUMNS",
    "KPI_NAMES",
    "QUEUE_COLUMNS",
    "TRAFFIC_COLUMNS",
    "KeyHealthView",
    "LastProbe",
    "QueryFilter",
    "QueryFilterError",
    "current_queues",
    "key_health_series",
    "kpi_summary",
    "last_probes",
    "latest_instances",
    "latest_key_health",
    "queue_depth_series",
    "range_totals",
    "recent_attempts",
    "stale_instances",
    "traffic_series",
]
