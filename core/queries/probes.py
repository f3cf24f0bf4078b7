"""The newest probe result of each key, from the rollups (the health report, the dashboard and ``/metrics``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter


@dataclass(frozen=True, slots=True)
class LastProbe:
    """The newest rollup bucket holding probes of a key: when it starts, how many probes, how many failed."""

    at: datetime
    calls: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.failed == 0


def last_probes(engine: sa.Engine, flt: QueryFilter) -> dict[tuple[str, str], LastProbe]:
    """Per (provider, key label): the newest bucket with probes in ``flt``'s range — the minute tier, so ``at`` is
    the probe's minute, unless the range is long enough to read the hour tier."""
    table, tier_s = common.rollup_table(3600 if flt.uses_hour_tier else 60)
    low = common.floor_time(flt.start, tier_s)
    newest = (
        sa.select(table.c.provider, table.c.key_label, sa.func.max(table.c.bucket).label("bucket"))
        .where(table.c.source == "probe", table.c.bucket >= low, table.c.bucket < flt.end)
        .group_by(table.c.provider, table.c.key_label)
        .subquery()
    )
    statement = (
        sa.select(
            table.c.provider,
            table.c.key_label,
            table.c.bucket,
            sa.cast(sa.func.sum(table.c.calls), sa.BigInteger).label("calls"),
            sa.cast(sa.func.sum(table.c.errors), sa.BigInteger).label("errors"),
        )
        .join(
            newest,
            sa.and_(
                table.c.provider == newest.c.provider,
                table.c.key_label == newest.c.key_label,
                table.c.bucket == newest.c.bucket,
            ),
        )
        .where(table.c.source == "probe")
        .group_by(table.c.provider, table.c.key_label, table.c.bucket)
    )
    _, rows = common.fetch(engine, statement)
    return {
        (provider, label): LastProbe(bucket, int(calls), int(errors))
        for provider, label, bucket, calls, errors in sorted(rows, key=lambda row: (row[0], row[1]))
    }
