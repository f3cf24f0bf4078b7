"""What past probes say: which keys to return to service, and how many probes in a row each key has failed.

:func:`restore_recovered_keys` turns successful probes into control commands for every live instance: ``reset_key``
for a key they report cooling down, ``enable_key`` for one the provider had refused (auth, quota). Each instance
applies them on its next heartbeat, so a key is back within one heartbeat interval (5 s by default), not at once.
A key an operator disabled stays disabled: only an operator enables it.

:func:`consecutive_probe_failures` feeds the ``probe_failures`` alert rule and the API.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.clock import as_utc
from pulsegate.core.keys.health import DISABLING
from pulsegate.core.ops.control import issue_command
from pulsegate.core.ops.probe import ProbeResult
from pulsegate.core.queries.keys import latest_key_views, stale_before
from pulsegate.core.store.tables import api_usage_metrics, control_commands, metric_rollups_1m

log = logging.getLogger(__name__)

#: How a key the provider refused is described by :meth:`pulsegate.core.keys.health.KeyHealth.record_failure`
#: (``"auth: the provider refused this key"``); any other disabled reason is an operator's and is left alone.
AUTO_DISABLED_PREFIXES: tuple[str, ...] = tuple(f"{error_class.value}: " for error_class in DISABLING)
DEFAULT_FAILURE_LOOKBACK = timedelta(hours=24)

# --- returning keys to service ----------------------------------------------------------------------------------


def _auto_disabled(reason: object) -> bool:
    return isinstance(reason, str) and reason.startswith(AUTO_DISABLED_PREFIXES)


def recovery_command(views: Sequence[dict[str, Any]], now: datetime) -> str | None:
    """What a successful probe should do for one key, given every live instance's latest view of it:
    ``enable_key`` if one reports it refused by the provider, else ``reset_key`` if one reports it cooling down,
    else nothing. Nothing at all when an operator disabled it on any instance: ``enable_key`` would undo that."""
    disabled = [v for v in views if v.get("status") == "disabled" or _given(v.get("disabled_reason"))]
    if any(not _auto_disabled(v.get("disabled_reason")) for v in disabled):
        return None
    if disabled:
        return "enable_key"
    for view in views:
        until = view.get("cooldown_until")
        if view.get("status") == "cooldown" or (_given(until) and as_utc(until) > now):
            return "reset_key"
    return None


def _given(value: object) -> bool:
    """Not None, NaN or NaT (a pandas frame's empty cells)."""
    return value is not None and value == value  # NaN and NaT are the values unequal to themselves


def restore_recovered_keys(
    engine: sa.Engine,
    results: Sequence[ProbeResult],
    now: datetime,
    *,
    heartbeat_interval_s: float,
    requested_by: str = "probe",
) -> list[int]:
    """For each key a probe just found working: ``reset_key`` when the live instances report it cooling down,
    ``enable_key`` when the provider had refused it (auth, quota). Keys an operator disabled stay disabled — also
    when the ``disable_key`` is so recent (unexpired) that the snapshots do not show it yet. A command the instances
    have had no heartbeat to act on yet is not issued twice. Returns the ids of the commands issued (see
    :func:`pulsegate.core.ops.control.command_status`)."""
    working = sorted({(r.provider, r.key_label) for r in results if r.ok})
    if not working:
        return []
    frame = latest_key_views(engine, now)
    live_after = stale_before(now, heartbeat_interval_s)
    views: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        if as_utc(row["ts"]) >= live_after:
            views.setdefault((row["provider"], row["key_label"]), []).append(row)
    wanted = {}
    for key in working:
        command = recovery_command(views.get(key, []), now)
        if command is not None:
            wanted[key] = command
    if not wanted:
        return []
    recent = _recent_commands(engine, list(wanted), now)
    issued: list[int] = []
    for (provider, label), command in wanted.items():
        # A heartbeat writes its snapshot before applying commands: a view reflects a command only when taken
        # more than one interval after it was issued.
        newest_view = max(as_utc(view["ts"]) for view in views[(provider, label)])
        reflected_before = newest_view - timedelta(seconds=heartbeat_interval_s)
        earlier = sorted(recent.get((provider, label), []), key=lambda item: item[1])
        switches = [name for name, _ in earlier if name in ("disable_key", "enable_key")]
        if switches and switches[-1] == "disable_key":
            log.info("probe of %s key %r succeeded; a recent disable_key stands", provider, label)
            continue
        if any(name == command and created >= reflected_before for name, created in earlier):
            continue  # the same command is on its way
        command_id = issue_command(
            engine, command, provider=provider, key_label=label, requested_by=requested_by, now=now
        )
        log.info("probe of %s key %r succeeded: %s issued (command %d)", provider, label, command, command_id)
        issued.append(command_id)
    return issued


def _recent_commands(
    engine: sa.Engine, keys: Sequence[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], list[tuple[str, datetime]]]:
    """Unexpired key commands for these keys: ``(command, created_at)`` per (provider, key label)."""
    c = control_commands
    query = sa.select(c.c.provider, c.c.key_label, c.c.command, c.c.created_at).where(
        c.c.expires_at > now,
        c.c.created_at <= now,
        sa.or_(*(sa.and_(c.c.provider == provider, c.c.key_label == label) for provider, label in keys)),
    )
    found: dict[tuple[str, str], list[tuple[str, datetime]]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            found.setdefault((row.provider, row.key_label), []).append((row.command, as_utc(row.created_at)))
    return found


# --- consecutive failures, for alert rules and the API ------------------------------------------------------------


#: ``source = 'probe'`` written into the SQL, not bound: only a literal lets the planners (PostgreSQL's generic plans,
#: SQLite) prove the query matches the partial index ``ix_api_usage_metrics_probe_ts``.
PROBE_SOURCE = sa.literal_column("'probe'")


def consecutive_probe_failures(
    engine: sa.Engine, now: datetime, *, lookback: timedelta = DEFAULT_FAILURE_LOOKBACK
) -> dict[tuple[str, str], int]:
    """Per (provider, key label) probed within ``lookback``: failed probes since its last successful one (0 when
    the latest probe passed). The minute rollups narrow the raw rows read to those after each key's last
    successful minute; a key failing all day still reads only its probe rows, through the partial index on probe
    rows (never the day's live traffic)."""
    since = now - lookback
    r = metric_rollups_1m
    last_ok = sa.func.max(sa.case((r.c.successes > 0, r.c.bucket), else_=None))
    summary = (
        sa.select(r.c.provider, r.c.key_label, last_ok.label("last_ok"))
        .where(
            r.c.source == "probe", r.c.bucket >= since - timedelta(minutes=1), r.c.bucket <= now, r.c.key_label != ""
        )
        .group_by(r.c.provider, r.c.key_label)
    )
    m = api_usage_metrics
    with engine.connect() as connection:
        keys = connection.execute(summary).all()
        if not keys:
            return {}
        starts = {(k.provider, k.key_label): max(since, as_utc(k.last_ok)) if k.last_ok else since for k in keys}
        # each key's own probes from its own start: a key failing all day reads its day of probes, never the
        # other keys' (nor any live row) — one index range per key
        since_start = sa.or_(
            *(
                sa.and_(m.c.provider == provider, m.c.key_label == label, m.c.ts >= start)
                for (provider, label), start in sorted(starts.items())
            )
        )
        raw = connection.execute(
            sa.select(m.c.provider, m.c.key_label, m.c.ts, m.c.outcome)
            .where(m.c.source == PROBE_SOURCE, since_start, m.c.ts <= now)
            .order_by(m.c.ts)
        ).all()
    counts = dict.fromkeys(starts, 0)
    for row in raw:
        key = (row.provider, row.key_label)
        if key not in counts or as_utc(row.ts) < starts[key]:
            continue
        counts[key] = 0 if row.outcome == "success" else counts[key] + 1
    return counts
