"""Budget enforcement, a subscriber to the alert state machine: a ``key_monthly_spend`` rule with ``enforce = true``
disables its key when it fires and enables it when it resolves, through the control channel
(:mod:`pulsegate.core.ops.control`), in the evaluator's transactions; while it fires, a key a live instance still serves
is disabled again."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

import sqlalchemy as sa

from pulsegate.core.alerts.episode import Episode
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.ops.control import validate_command
from pulsegate.core.store.tables import control_commands

log = logging.getLogger(__name__)

#: How long an enforcement command stays available to instances (pulsegate.core.ops.control caps it at one day).
ENFORCE_TTL = timedelta(hours=1)


def enforces(rule: Rule | None, labels: Mapping[str, str]) -> bool:
    return bool(rule is not None and rule.kind == "key_monthly_spend" and rule.enforce and labels.get("key_label"))


class BudgetEnforcement:
    """The :class:`~pulsegate.core.alerts.subscriber.Subscriber` that turns budget alerts into ``disable_key`` /
    ``enable_key`` control commands."""

    def __init__(
        self, store: sa.Engine, writer: sa.Engine, rules: Mapping[str, Rule], heartbeat_interval_s: float
    ) -> None:
        self.store = store
        self.writer = writer
        self.rules = rules
        self.heartbeat_interval_s = heartbeat_interval_s

    def on_transition(
        self, connection: sa.Connection, before: Episode | None, after: Episode, rule: Rule | None, now: datetime
    ) -> list[int]:
        fired = after.state == "firing" and (before is None or before.state != "firing")
        if fired and enforces(rule, after.labels):
            return [command(connection, "disable_key", after.rule_id, after.labels, now)]
        if after.state == "resolved" and before is not None and before.state == "firing":
            return on_resolve(connection, before, now)
        return []

    def after_transitions(self, episodes: Iterable[Episode], now: datetime) -> list[int]:
        """While a budget alert with ``enforce`` fires, a live instance that still serves the key (one started
        after the ``disable_key`` expired) gets a new ``disable_key`` — unless one from this alert is pending."""
        enforced = [ep for ep in episodes if ep.state == "firing" and enforces(self.rules.get(ep.rule_id), ep.labels)]
        if not enforced:
            return []
        from pulsegate.core.queries.keys import latest_key_views, stale_before

        live_after = stale_before(now, self.heartbeat_interval_s)
        issued = []
        for ep in enforced:
            labels = ep.labels
            views = latest_key_views(self.store, now, provider=labels.get("provider"), key_label=labels["key_label"])
            records = views.to_dict("records")
            if not any(row["ts"] >= live_after and row["status"] != "disabled" for row in records):
                continue
            with self.writer.begin() as connection:
                if not disables_by(connection, ep.rule_id, labels, control_commands.c.expires_at > now):
                    issued.append(command(connection, "disable_key", ep.rule_id, labels, now))
        return issued


def on_resolve(connection: sa.Connection, episode: Episode, now: datetime) -> list[int]:
    """``enable_key`` when an episode that disabled its key resolves (the month rolled over, or the cap was
    raised) — only if this episode really issued a ``disable_key``."""
    labels = episode.labels
    if not labels.get("key_label") or episode.fired_at is None:
        return []
    if not disables_by(connection, episode.rule_id, labels, control_commands.c.created_at >= episode.fired_at):
        return []
    return [command(connection, "enable_key", episode.rule_id, labels, now)]


def disables_by(
    connection: sa.Connection, rule_id: str, labels: Mapping[str, str], when: sa.ColumnElement[bool]
) -> int:
    """How many ``disable_key`` commands this rule wrote for the key in ``labels`` that also match ``when`` — the
    one "did this alert disable the key" query, for both the enable on resolve and the disable again."""
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
