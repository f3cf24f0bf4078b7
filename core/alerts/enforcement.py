"""Budget enforcement: a ``key_monthly_spend`` rule with ``enforce = true`` disables its key when it fires and
enables it when it resolves, through the control channel (:mod:`core.control`), in the engine's transactions."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.alerts.rules import Rule
from core.control import validate_command
from core.store.tables import control_commands

log = logging.getLogger("core.alerts.evaluator")

#: How long an enforcement command stays available to instances (core.control caps it at one day).
ENFORCE_TTL = timedelta(hours=1)


def enforces(rule: Rule | None, labels: Mapping[str, str]) -> bool:
    return bool(rule is not None and rule.kind == "key_monthly_spend" and rule.enforce and labels.get("key_label"))


def on_fire(connection: sa.Connection, rule: Rule, labels: Mapping[str, str], now: datetime) -> list[int]:
    """``disable_key`` for the key of an enforcing budget alert that fires."""
    if not enforces(rule, labels):
        return []
    return [command(connection, "disable_key", rule.id, labels, now)]


def on_resolve(connection: sa.Connection, episode: Mapping[str, Any], now: datetime) -> list[int]:
    """``enable_key`` when an episode that disabled its key resolves (the month rolled over, or the cap was
    raised) — only if this episode really issued a ``disable_key``."""
    labels = episode["labels"] or {}
    if not labels.get("key_label") or episode["fired_at"] is None:
        return []
    if not disables_by(connection, episode["rule_id"], labels, control_commands.c.created_at >= episode["fired_at"]):
        return []
    return [command(connection, "enable_key", episode["rule_id"], labels, now)]


def reenforce(
    engine: sa.Engine,
    writer: sa.Engine,
    episodes: Iterable[Mapping[str, Any]],
    rules: Mapping[str, Rule],
    now: datetime,
    heartbeat_interval_s: float,
) -> list[int]:
    """While a budget alert with ``enforce`` fires, a live instance that still serves the key (one started after
    the ``disable_key`` expired) gets a new ``disable_key`` — unless one from this alert is still pending."""
    enforced = [
        ep for ep in episodes if ep["state"] == "firing" and enforces(rules.get(ep["rule_id"]), ep["labels"] or {})
    ]
    if not enforced:
        return []
    from core.queries.keys import latest_key_views, stale_before

    live_after = stale_before(now, heartbeat_interval_s)
    issued = []
    for ep in enforced:
        labels = ep["labels"]
        views = latest_key_views(engine, now, provider=labels.get("provider"), key_label=labels["key_label"])
        serving = [row for row in views.to_dict("records") if row["ts"] >= live_after and row["status"] != "disabled"]
        if not serving:
            continue
        with writer.begin() as connection:
            if not disables_by(connection, ep["rule_id"], labels, control_commands.c.expires_at > now):
                issued.append(command(connection, "disable_key", ep["rule_id"], labels, now))
    return issued


def disables_by(
    connection: sa.Connection, rule_id: str, labels: Mapping[str, str], when: sa.ColumnElement[bool]
) -> int:
    """How many ``disable_key`` commands this rule wrote for the key in ``labels`` that also match ``when``."""
    c = control_commands
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(c)
        .where(
            c.c.command == "disable_key",
            c.c.requested_by == f"alert:{rule_id}",
            c.c.provider == labels.get("provider"),
            c.c.key_label == labels["key_label"],
            when,
        )
    ).scalar_one()


def command(connection: sa.Connection, name: str, rule_id: str, labels: Mapping[str, str], now: datetime) -> int:
    """Write one control command for the key in ``labels``; its id."""
    row = validate_command(
        name,
        provider=labels.get("provider"),
        key_label=labels.get("key_label"),
        requested_by=f"alert:{rule_id}",
        now=now,
        ttl=ENFORCE_TTL,
    )
    command_id = connection.execute(control_commands.insert().values(**row).returning(control_commands.c.id))
    issued = int(command_id.scalar_one())
    provider, key_label = labels.get("provider"), labels.get("key_label")
    log.warning("alert %s: %s %s key %r (command %d)", rule_id, name, provider, key_label, issued)
    return issued
