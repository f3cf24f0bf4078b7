"""What every rule kind reads through: the per-evaluation :class:`SignalContext` (store, time, cached queries) and
the grouped rollup query. What a kind makes of it is a :class:`~pulsegate.core.alerts.reading.Reading`.

Windows are read from the rollup tiers — whole minutes from the minute tier, whole hours from the hour tier for
long windows — except the part of the minute a window starts in: that part is counted from the raw attempt rows
(at most a minute of them, through the time index), with the same aggregates the rollup writer uses, and only its
latency histogram is taken from the minute's rollup row in proportion. So a 30 s window covers 30 s, not "30 to
90 s", and an alert resolves when its window has really moved past the trouble.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pulsegate.core.alerts.rule_fields import RuleFields
from pulsegate.core.queries import common
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.rollups import raw_row_aggregates
from pulsegate.core.store.tables import api_usage_metrics, metric_rollups_1h, metric_rollups_1m

if TYPE_CHECKING:
    import pandas as pd

#: Traffic scope → the rollup columns that make its label set.
SCOPE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "global": (),
    "provider": ("provider",),
    "key": ("provider", "key_label"),
    "model": ("provider", "model"),
}
MINUTE_TIER_LONGEST = timedelta(hours=3)
Totals = dict[str, float]


@dataclass
class SignalContext:
    """The store, the time and the per-evaluation caches every kind reads through."""

    engine: sa.Engine
    now: datetime
    heartbeat_interval_s: float = 5.0
    probe_interval_s: float = 300.0
    channel_names: tuple[str, ...] = ()
    _cache: dict[Any, Any] = field(default_factory=dict)

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def totals(
        self, start: datetime, end: datetime, dims: tuple[str, ...], source: str
    ) -> dict[tuple[str, ...], Totals]:
        """Summed rollup columns per label-set tuple over ``[start, end)``."""
        return self.cached(
            ("totals", start, end, dims, source), lambda: grouped_totals(self.engine, start, end, dims, source)
        )

    def key_health(self) -> pd.DataFrame:
        from pulsegate.core.queries.keys import latest_key_health

        return self.cached(
            "keys",
            lambda: latest_key_health(self.engine, self.now, heartbeat_interval_s=self.heartbeat_interval_s).keys,
        )

    def queues(self) -> pd.DataFrame:
        from pulsegate.core.queries.keys import current_queues, latest_instances

        return self.cached(
            "queues",
            lambda: current_queues(
                latest_instances(self.engine, self.now, heartbeat_interval_s=self.heartbeat_interval_s)
            ),
        )


# --- the grouped rollup query -----------------------------------------------------------------------------------


def spans(start: datetime, end: datetime) -> list[tuple[sa.Table, datetime, datetime]]:
    """Which tier covers which whole minutes or hours of ``[start, end)``: minutes for short windows; otherwise the
    whole hours from the hour tier and the minutes at either end from the minute tier (the writer keeps both in one
    transaction, so they agree). The part of a minute before the first whole one is :func:`leading_part`'s."""
    low = common.floor_time(start, 60)
    if start > low:
        low += timedelta(minutes=1)
    if low >= end:
        return []
    first_hour = common.floor_time(low + timedelta(seconds=3599), 3600)
    last_hour = common.floor_time(end, 3600)
    if end - start <= MINUTE_TIER_LONGEST or first_hour >= last_hour:
        return [(metric_rollups_1m, low, end)]
    out = [(metric_rollups_1h, first_hour, last_hour)]
    return out + [(metric_rollups_1m, a, b) for a, b in ((low, first_hour), (last_hour, end)) if a < b]


def leading_part(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """``[start, next minute)`` when ``start`` falls inside a minute (clipped to ``end``), else None."""
    low = common.floor_time(start, 60)
    if start <= low:
        return None
    return start, min(end, low + timedelta(minutes=1))


def _add(found: dict[tuple[str, ...], Totals], key: tuple[str, ...], values: dict[str, Any], weight: float) -> None:
    have = found.setdefault(key, {})
    for name, value in values.items():
        if name == "latency_max_ms":
            have[name] = max(have.get(name, 0.0), float(value or 0.0))
        else:
            have[name] = have.get(name, 0.0) + float(value or 0) * weight


def _rollup_rows(
    engine: sa.Engine, table: sa.Table, ranges: list[tuple[datetime, datetime]], dims: tuple[str, ...], source: str
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    where = [sa.or_(*(sa.and_(table.c.bucket >= a, table.c.bucket < b) for a, b in ranges))]
    if source != "all":
        where.append(table.c.source == source)
    columns = [table.c[d] for d in dims]
    statement = sa.select(*columns, *common.summed(table)).where(*where)
    if columns:
        statement = statement.group_by(*columns)
    names, rows = common.fetch(engine, statement)
    out = []
    for row in rows:
        values = dict(zip(names[len(dims) :], row[len(dims) :], strict=True))
        if not dims and not values["calls"] and not values["cost_usd"]:
            continue  # the ungrouped SUM returns one row of zeros for an empty window
        out.append((tuple(str(v) for v in row[: len(dims)]), values))
    return out


def _raw_rows(
    engine: sa.Engine, start: datetime, end: datetime, dims: tuple[str, ...], source: str
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The rollup aggregates of the raw rows in ``[start, end)`` (less than a minute), grouped like the rollups."""
    m = api_usage_metrics
    columns = [sa.func.coalesce(m.c[d], "") if d == "key_label" else m.c[d] for d in dims]
    aggregates = [sa.literal_column(expression).label(name) for name, expression in raw_row_aggregates()]
    where = [m.c.ts >= start, m.c.ts < end]
    if source != "all":
        where.append(m.c.source == source)
    statement = sa.select(*columns, *aggregates).select_from(m).where(*where)
    if columns:
        statement = statement.group_by(*columns)
    names, rows = common.fetch(engine, statement)
    return [
        (tuple(str(v) for v in row[: len(dims)]), dict(zip(names[len(dims) :], row[len(dims) :], strict=True)))
        for row in rows
        if row[len(dims)]  # calls
    ]


def grouped_totals(
    engine: sa.Engine, start: datetime, end: datetime, dims: tuple[str, ...], source: str
) -> dict[tuple[str, ...], Totals]:
    """Per label-set tuple (values of ``dims``), the sums of every additive rollup column plus latency max over
    ``[start, end)``: one query per tier, and for a start inside a minute, that part of it from the raw rows."""
    found: dict[tuple[str, ...], Totals] = {}
    by_table: dict[str, tuple[sa.Table, list[tuple[datetime, datetime]]]] = {}
    for table, a, b in spans(start, end):
        by_table.setdefault(table.name, (table, []))[1].append((a, b))
    for table, ranges in by_table.values():
        for key, values in _rollup_rows(engine, table, ranges, dims, source):
            _add(found, key, values, 1.0)
    part = leading_part(start, end)
    if part is not None:
        for key, values in _raw_rows(engine, *part, dims, source):
            _add(found, key, values, 1.0)
        # the latency histogram is not in the raw rows: the minute's, in proportion to the part in the window
        minute = common.floor_time(start, 60)
        share = (part[1] - part[0]).total_seconds() / 60
        whole = [(minute, minute + timedelta(minutes=1))]
        for key, values in _rollup_rows(engine, metric_rollups_1m, whole, dims, source):
            if key in found:
                _add(found, key, {name: values[name] for name in latency_buckets.COLUMN_NAMES}, share)
    return found


def labels_for(rule: RuleFields, dims: tuple[str, ...], key: tuple[str, ...]) -> dict[str, str] | None:
    """The label set of one group, or None when the rule's ``provider`` / ``key_label`` filter leaves it out."""
    labels = dict(zip(dims, key, strict=True))
    if "key_label" in labels and not labels["key_label"]:
        return None  # attempts that had no key (e.g. rejected before one was chosen) have no key alert
    if rule.provider is not None and labels.get("provider", rule.provider) != rule.provider:
        return None
    if rule.key_label is not None and labels.get("key_label", rule.key_label) != rule.key_label:
        return None
    return labels


def keep(rule: RuleFields, labels: dict[str, str]) -> bool:
    """Whether a state kind's label set passes the rule's ``provider`` / ``key_label`` filter."""
    return labels_for(rule, tuple(labels), tuple(labels.values())) is not None


def window(rule: RuleFields, ctx: SignalContext) -> tuple[datetime, datetime]:
    assert rule.window_s
    return ctx.now - timedelta(seconds=rule.window_s), ctx.now


def traffic(
    rule: RuleFields, ctx: SignalContext, start: datetime, end: datetime
) -> list[tuple[dict[str, str], Totals]]:
    """(labels, totals) of every label set of the rule's scope with calls in ``[start, end)``."""
    dims = SCOPE_DIMENSIONS[rule.scope]
    out = []
    for key, totals in sorted(ctx.totals(start, end, dims, rule.source).items()):
        labels = labels_for(rule, dims, key)
        if labels is not None:
            out.append((labels, totals))
    return out
