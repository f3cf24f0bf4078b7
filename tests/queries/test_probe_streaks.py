"""The probe_failures rule's streak query gives exactly what a plain scan of every probe row gives.

``consecutive_probe_failures`` reads the minute rollups to skip to each key's last successful minute, then the
probe rows after it through the partial index on probe rows. Here a seeded store — live traffic around the probes,
a key failing all day, a key whose last success shares its minute with failures, a key probed only before the
lookback — is counted both ways.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.ops.probe_history import consecutive_probe_failures
from pulsegate.core.store.tables import api_usage_metrics
from tests.alerts.support import Calls

NOW = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
LOOKBACK = timedelta(days=1)


def _plain_scan(store: sa.Engine, now: datetime) -> dict[tuple[str, str], int]:
    """Every probe row of the lookback, in time order: the streak is reset by a success, grown by anything else."""
    m = api_usage_metrics
    with store.connect() as connection:
        rows = connection.execute(
            sa.select(m.c.provider, m.c.key_label, m.c.outcome)
            .where(m.c.source == "probe", m.c.ts >= now - LOOKBACK, m.c.ts <= now, m.c.key_label.is_not(None))
            .order_by(m.c.ts)
        ).all()
    counts: dict[tuple[str, str], int] = {}
    for provider, label, outcome in rows:
        counts[(provider, label)] = 0 if outcome == "success" else counts.get((provider, label), 0) + 1
    return counts


def _seed(store: sa.Engine) -> None:
    calls = Calls(store)
    rng = random.Random(17)
    start = NOW - LOOKBACK - timedelta(minutes=30)
    for minute in range(0, 24 * 60 + 30, 7):
        at = start + timedelta(minutes=minute, seconds=rng.randint(0, 59))
        if at > NOW:
            break
        calls.add(at, ok=rng.randint(0, 4), failed=rng.randint(0, 2))  # live traffic: never counted
        calls.add(at, failed=1, source="probe", key_label="Revoked", error_class=ErrorClass.AUTH)
        ok = rng.random() < 0.6
        calls.add(at, ok=int(ok), failed=int(not ok), source="probe", provider="openai", key_label="Main")
    # the last success shares its minute with failures before and after it
    minute = NOW.replace(second=0) - timedelta(minutes=40)
    calls.add(minute + timedelta(seconds=5), failed=2, source="probe", key_label="Primary")
    calls.add(minute + timedelta(seconds=20), ok=1, source="probe", key_label="Primary")
    calls.add(minute + timedelta(seconds=40), failed=3, source="probe", key_label="Primary")
    calls.add(NOW - timedelta(minutes=5), failed=1, source="probe", key_label="Primary")
    # probed only before the lookback: not listed
    calls.add(NOW - LOOKBACK - timedelta(minutes=3), failed=4, source="probe", key_label="Backup 1")


def test_streaks_match_a_scan_of_every_probe_row(store: sa.Engine) -> None:
    _seed(store)
    counted = consecutive_probe_failures(store, NOW, lookback=LOOKBACK)
    assert counted == _plain_scan(store, NOW)
    assert counted[("anthropic", "Revoked")] == 205  # every probe of the day failed
    assert counted[("anthropic", "Primary")] == 4
    assert ("anthropic", "Backup 1") not in counted
    assert counted[("openai", "Main")] == 4
