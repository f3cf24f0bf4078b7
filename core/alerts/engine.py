"""The alert state machine: readings in, episodes and outbox rows out — exactly once, across restarts and workers.

Each :meth:`AlertEngine.evaluate` has two phases, each a short transaction per *group* (rule × provider):

1. **Transitions.** Every rule's readings (:mod:`core.alerts.signals`) move episodes inactive → pending → firing
   → resolved (``for``: how long a breach must last before firing; ``min_sample``: too few calls hold the current
   state). A firing episode that clears is resolved and, if its firing was notified, a *resolved* message is
   written to the outbox in the same transaction.
2. **Notifications.** Firing episodes not yet notified go out as one *firing* message per group once the oldest
   has waited ``group_wait`` (alerts that start together arrive together); notified ones get a *repeat* message
   every ``repeat_interval``. ``last_notified_at`` is set in the transaction that writes the outbox rows.

Every write is conditional on the state it was decided from (``WHERE state = …``, ``last_notified_at IS NULL``,
the partial unique index on open fingerprints): when two evaluators race, the second finds nothing to change,
rolls its group back and writes nothing — a notification is written once, and a crash between phases only delays
it to the next evaluation. Silenced alerts (:mod:`core.alerts.silences`) and per-key alerts of a provider with a
provider-wide alert firing (inhibition) change state but are not notified. Messages are routed to the channels
whose severities include the alert's; ``channel_failing`` alerts go to the *other* channels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.alerts import signals
from core.alerts.config import AlertConfig
from core.alerts.model import AlertView, Message, Transition
from core.alerts.rules import Rule, format_duration
from core.alerts.silences import Silence, active_silences, silenced_by
from core.clock import SYSTEM_CLOCK, Clock
from core.control import validate_command
from core.store.engine import SQLITE_IMMEDIATE
from core.store.tables import alert_episodes, alert_notifications, control_commands

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "firing")
SUMMARY_MAX = 500
#: How long an enforcement command stays available to instances (core.control caps it at one day).
ENFORCE_TTL = timedelta(hours=1)


class _Conflict(Exception):
    """Another evaluator changed what this group's transaction was decided from: roll back, write nothing."""


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    """Stable id of one rule × label set (hex, 32 characters)."""
    text = json.dumps([rule_id, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def group_key(rule_id: str, labels: Mapping[str, str]) -> str:
    """Alerts of one rule on one provider go out together: ``key_unhealthy/provider=anthropic``."""
    provider = labels.get("provider")
    return f"{rule_id}/provider={provider}" if provider else rule_id


@dataclass
class EvaluationReport:
    """What one evaluation did (fingerprints per transition; outbox rows written)."""

    now: datetime
    readings: int = 0
    pending: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications: int = 0
    messages: list[tuple[str, str, str]] = field(default_factory=list)  # (transition, group_key, channel)
    silenced: list[str] = field(default_factory=list)
    inhibited: list[str] = field(default_factory=list)
    conflicts: int = 0
    commands: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """One log line."""
        return (
            f"alerts at {self.now.isoformat(timespec='seconds')}: {self.readings} readings, "
            f"{len(self.pending)} pending, {len(self.fired)} fired, {len(self.resolved)} resolved, "
            f"{self.notifications} notifications, {len(self.silenced)} silenced, {len(self.inhibited)} inhibited"
            + (f", {len(self.errors)} rule errors" if self.errors else "")
        )


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """An open episode as the dashboard and CLI show it, with why it is not being notified, if it is not."""

    episode_id: int
    rule_id: str
    fingerprint: str
    labels: dict[str, str]
    severity: str
    state: str
    summary: str | None
    value: float | None
    threshold: float | None
    pending_since: datetime
    fired_at: datetime | None
    last_notified_at: datetime | None
    silenced_by: tuple[int, ...]
    inhibited_by: str | None  # fingerprint of the provider-wide alert muting it


@dataclass(frozen=True, slots=True)
class _Candidate:
    rule: Rule
    labels: dict[str, str]
    reading: signals.Reading


@dataclass
class _Change:
    """One episode's transition in a group transaction."""

    action: str  # open | fire | update | resolve
    fingerprint: str
    rule: Rule | None
    labels: dict[str, str]
    episode: dict[str, Any] | None = None
    reading: signals.Reading | None = None
    notify_resolved: bool = False


class AlertEngine:
    """Evaluates ``config``'s rules against the store at ``engine``. One per worker; cheap to recreate (all state
    lives in the database)."""

    def __init__(self, engine: sa.Engine, config: AlertConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self._rules = {rule.id: rule for rule in config.rules}
        self._writer = engine.execution_options(**{SQLITE_IMMEDIATE: True})

    # --- reading ------------------------------------------------------------------------------------------------

    def _open_episodes(self) -> dict[str, dict[str, Any]]:
        e = alert_episodes
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(e).where(e.c.state.in_(OPEN_STATES)).order_by(e.c.id)).mappings()
            return {row["fingerprint"]: dict(row) for row in rows}

    def _candidates(self, now: datetime, report: EvaluationReport) -> tuple[dict[str, _Candidate], set[str]]:
        """Readings of every rule by fingerprint, and the ids of rules whose signal failed (their episodes hold)."""
        ctx = signals.SignalContext(
            self.engine,
            now,
            heartbeat_interval_s=self.config.heartbeat_interval_s,
            probe_interval_s=self.config.probe_interval_s,
            channel_names=self.config.channel_names,
        )
        found: dict[str, _Candidate] = {}
        failed: set[str] = set()
        for rule in self.config.rules:
            try:
                readings = signals.read(rule, ctx)
            except Exception as exc:  # one broken rule must not stop the others
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                report.errors[rule.id] = reason[:300]
                failed.add(rule.id)
                log.warning("alert rule %s could not be evaluated: %s", rule.id, reason)
                continue
            for reading in readings:
                labels = {**dict(rule.labels), **reading.labels}
                found[fingerprint(rule.id, labels)] = _Candidate(rule, labels, reading)
                report.readings += 1
        return found, failed

    def _inhibitors(self, episodes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
        """provider → fingerprint of a firing provider-wide alert whose rule inhibits per-key alerts."""
        found: dict[str, str] = {}
        for fp, ep in sorted(episodes.items(), key=lambda item: item[1]["id"]):
            rule = self._rules.get(ep["rule_id"])
            labels = ep["labels"] or {}
            if (
                ep["state"] == "firing"
                and rule is not None
                and rule.inhibits
                and labels.get("provider")
                and not labels.get("key_label")
            ):
                found.setdefault(labels["provider"], fp)
        return found

    @staticmethod
    def _inhibited_by(labels: Mapping[str, str], inhibitors: Mapping[str, str], fp: str) -> str | None:
        if not labels.get("key_label"):
            return None
        source = inhibitors.get(labels.get("provider", ""))
        return source if source is not None and source != fp else None

    # --- the public entry points ------------------------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> EvaluationReport:
        """One evaluation at ``now`` (default: the clock): transitions, then notifications. Blocking I/O."""
        now = now or self.clock.now()
        report = EvaluationReport(now)
        candidates, failed = self._candidates(now, report)
        silences = active_silences(self.engine, now)
        opened = self._open_episodes()
        self._transitions(now, candidates, failed, opened, silences, report)
        self._reenforce(now, report)
        self._notifications(now, silences, report)
        return report

    def status(self, now: datetime | None = None) -> list[AlertStatus]:
        """Open episodes, firing first, each with the silences and the inhibiting alert that mute it."""
        now = now or self.clock.now()
        episodes = self._open_episodes()
        silences = active_silences(self.engine, now)
        inhibitors = self._inhibitors(episodes)
        out = []
        for fp, ep in episodes.items():
            labels = dict(ep["labels"] or {})
            out.append(
                AlertStatus(
                    episode_id=int(ep["id"]),
                    rule_id=ep["rule_id"],
                    fingerprint=fp,
                    labels=labels,
                    severity=ep["severity"],
                    state=ep["state"],
                    summary=ep["summary"],
                    value=ep["value"],
                    threshold=ep["threshold"],
                    pending_since=ep["pending_since"],
                    fired_at=ep["fired_at"],
                    last_notified_at=ep["last_notified_at"],
                    silenced_by=tuple(silenced_by(silences, ep["rule_id"], labels, ep["severity"])),
                    inhibited_by=self._inhibited_by(labels, inhibitors, fp),
                )
            )
        return sorted(out, key=lambda a: (a.state != "firing", a.rule_id, a.fingerprint))

    # --- phase 1: transitions ------------------------------------------------------------------------------------

    def _transitions(
        self,
        now: datetime,
        candidates: dict[str, _Candidate],
        failed: set[str],
        opened: dict[str, dict[str, Any]],
        silences: list[Silence],
        report: EvaluationReport,
    ) -> None:
        inhibitors = self._inhibitors(opened)
        groups: dict[str, list[_Change]] = defaultdict(list)
        for fp in sorted(set(candidates) | set(opened)):
            cand = candidates.get(fp)
            ep = opened.get(fp)
            if ep is not None and ep["rule_id"] in failed:
                continue  # no evidence either way
            rule = cand.rule if cand is not None else self._rules.get(ep["rule_id"]) if ep is not None else None
            labels = cand.labels if cand is not None else dict(ep["labels"] or {}) if ep is not None else {}
            key = group_key(rule.id if rule is not None else ep["rule_id"], labels)  # type: ignore[index]
            if cand is not None and not cand.reading.enough:
                if ep is not None:
                    groups[key].append(_Change("update", fp, rule, labels, ep, cand.reading))
                continue
            if cand is not None and cand.reading.breached:
                assert rule is not None
                if ep is None:
                    groups[key].append(_Change("open", fp, rule, labels, None, cand.reading))
                elif ep["state"] == "pending" and now - ep["pending_since"] >= timedelta(seconds=rule.for_s):
                    groups[key].append(_Change("fire", fp, rule, labels, ep, cand.reading))
                else:
                    groups[key].append(_Change("update", fp, rule, labels, ep, cand.reading))
                continue
            if ep is None:
                continue
            muted = bool(
                silenced_by(silences, ep["rule_id"], labels, ep["severity"])
                or self._inhibited_by(labels, inhibitors, fp)
            )
            notify = ep["state"] == "firing" and ep["last_notified_at"] is not None and not muted
            reading = cand.reading if cand is not None else None
            groups[key].append(_Change("resolve", fp, rule, labels, ep, reading, notify_resolved=notify))
        for key, changes in sorted(groups.items()):
            if all(c.action == "update" for c in changes) and not any(self._value_changed(c) for c in changes):
                continue
            try:
                with self._writer.begin() as connection:
                    done = self._apply(connection, key, changes, now)
            except (_Conflict, sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                if isinstance(exc, sa.exc.OperationalError) and not _is_contention(exc):
                    raise
                report.conflicts += 1
                log.info("alert group %s changed under another evaluator; left to it", key)
                continue
            for action, fp in done["transitions"]:
                getattr(report, {"pending": "pending", "firing": "fired", "resolved": "resolved"}[action]).append(fp)
            report.notifications += done["rows"]
            report.messages += done["messages"]
            report.commands += done["commands"]

    @staticmethod
    def _value_changed(change: _Change) -> bool:
        ep, reading = change.episode, change.reading
        if ep is None or reading is None:
            return True
        return ep["value"] != reading.value or (ep["summary"] or "") != reading.summary[:SUMMARY_MAX]

    def _apply(self, connection: sa.Connection, key: str, changes: list[_Change], now: datetime) -> dict[str, Any]:
        e = alert_episodes
        done: dict[str, Any] = {"transitions": [], "rows": 0, "messages": [], "commands": []}
        resolved_views: list[AlertView] = []
        resolved_rule: Rule | None = None
        for change in changes:
            rule, reading, ep = change.rule, change.reading, change.episode
            if change.action == "open":
                assert rule is not None and reading is not None
                firing = rule.for_s <= 0
                row = {
                    "rule_id": rule.id,
                    "fingerprint": change.fingerprint,
                    "labels": change.labels,
                    "severity": rule.severity,
                    "state": "firing" if firing else "pending",
                    "pending_since": now,
                    "fired_at": now if firing else None,
                    "value": reading.value,
                    "threshold": reading.threshold,
                    "summary": reading.summary[:SUMMARY_MAX],
                }
                connection.execute(e.insert().values(**row))
                done["transitions"].append(("pending", change.fingerprint))
                if firing:
                    done["transitions"].append(("firing", change.fingerprint))
                    done["commands"] += self._enforce_on_fire(connection, rule, change.labels, now)
                continue
            assert ep is not None
            if change.action == "fire":
                assert rule is not None and reading is not None
                updated = connection.execute(
                    e.update()
                    .where(e.c.id == ep["id"], e.c.state == "pending")
                    .values(
                        state="firing",
                        fired_at=now,
                        value=reading.value,
                        threshold=reading.threshold,
                        summary=reading.summary[:SUMMARY_MAX],
                    )
                ).rowcount
                if updated != 1:
                    raise _Conflict(change.fingerprint)
                done["transitions"].append(("firing", change.fingerprint))
                done["commands"] += self._enforce_on_fire(connection, rule, change.labels, now)
            elif change.action == "update":
                if reading is not None and self._value_changed(change):
                    connection.execute(
                        e.update()
                        .where(e.c.id == ep["id"], e.c.state == ep["state"])
                        .values(value=reading.value, threshold=reading.threshold, summary=reading.summary[:SUMMARY_MAX])
                    )
            else:  # resolve
                values: dict[str, Any] = {"state": "resolved", "resolved_at": now}
                if reading is not None:
                    values.update(value=reading.value, summary=reading.summary[:SUMMARY_MAX])
                updated = connection.execute(
                    e.update().where(e.c.id == ep["id"], e.c.state == ep["state"]).values(**values)
                ).rowcount
                if updated != 1:
                    raise _Conflict(change.fingerprint)
                done["transitions"].append(("resolved", change.fingerprint))
                if ep["state"] == "firing":
                    done["commands"] += self._enforce_on_resolve(connection, ep, now)
                if change.notify_resolved:
                    resolved_rule = resolved_rule or rule
                    summary = reading.summary if reading is not None else (ep["summary"] or "")
                    resolved_views.append(
                        self._view(ep, "resolved", summary=summary, value=values.get("value", ep["value"]), now=now)
                    )
        if resolved_views:
            rows, messages = self._write_message(connection, "resolved", key, resolved_rule, resolved_views, now)
            done["rows"] += rows
            done["messages"] += messages
        return done

    # --- enforcement (key_monthly_spend with enforce = true) ---------------------------------------------------------

    def _enforce_on_fire(
        self, connection: sa.Connection, rule: Rule, labels: Mapping[str, str], now: datetime
    ) -> list[int]:
        if not (rule.kind == "key_monthly_spend" and rule.enforce and labels.get("key_label")):
            return []
        return [self._command(connection, "disable_key", rule.id, labels, now)]

    def _enforce_on_resolve(self, connection: sa.Connection, ep: Mapping[str, Any], now: datetime) -> list[int]:
        """``enable_key`` when an episode that disabled its key resolves (the month rolled over, or the cap was
        raised) — only if this episode really issued a ``disable_key``."""
        labels = ep["labels"] or {}
        if not labels.get("key_label") or ep["fired_at"] is None:
            return []
        c = control_commands
        issued = connection.execute(
            sa.select(sa.func.count())
            .select_from(c)
            .where(
                c.c.command == "disable_key",
                c.c.requested_by == f"alert:{ep['rule_id']}",
                c.c.provider == labels.get("provider"),
                c.c.key_label == labels["key_label"],
                c.c.created_at >= ep["fired_at"],
            )
        ).scalar_one()
        if not issued:
            return []
        return [self._command(connection, "enable_key", ep["rule_id"], labels, now)]

    def _reenforce(self, now: datetime, report: EvaluationReport) -> None:
        """While a budget alert with ``enforce`` fires, a live instance that still serves the key (one started after
        the ``disable_key`` expired) gets a new ``disable_key`` — unless one from this alert is still pending."""
        enforced = [
            ep
            for ep in self._open_episodes().values()
            if ep["state"] == "firing"
            and (rule := self._rules.get(ep["rule_id"])) is not None
            and rule.kind == "key_monthly_spend"
            and rule.enforce
            and (ep["labels"] or {}).get("key_label")
        ]
        if not enforced:
            return
        from core.queries.keys import latest_key_views, stale_before

        live_after = stale_before(now, self.config.heartbeat_interval_s)
        c = control_commands
        for ep in enforced:
            labels = ep["labels"]
            views = latest_key_views(self.engine, now, provider=labels.get("provider"), key_label=labels["key_label"])
            serving = [
                row for row in views.to_dict("records") if row["ts"] >= live_after and row["status"] != "disabled"
            ]
            if not serving:
                continue
            with self._writer.begin() as connection:
                pending = connection.execute(
                    sa.select(sa.func.count())
                    .select_from(c)
                    .where(
                        c.c.command == "disable_key",
                        c.c.requested_by == f"alert:{ep['rule_id']}",
                        c.c.provider == labels.get("provider"),
                        c.c.key_label == labels["key_label"],
                        c.c.expires_at > now,
                    )
                ).scalar_one()
                if not pending:
                    report.commands.append(self._command(connection, "disable_key", ep["rule_id"], labels, now))

    @staticmethod
    def _command(
        connection: sa.Connection, command: str, rule_id: str, labels: Mapping[str, str], now: datetime
    ) -> int:
        row = validate_command(
            command,
            provider=labels.get("provider"),
            key_label=labels.get("key_label"),
            requested_by=f"alert:{rule_id}",
            now=now,
            ttl=ENFORCE_TTL,
        )
        command_id = connection.execute(control_commands.insert().values(**row).returning(control_commands.c.id))
        issued = int(command_id.scalar_one())
        log.warning(
            "alert %s: %s %s key %r (command %d)",
            rule_id,
            command,
            labels.get("provider"),
            labels.get("key_label"),
            issued,
        )
        return issued

    # --- phase 2: notifications -----------------------------------------------------------------------------------

    def _notifications(self, now: datetime, silences: list[Silence], report: EvaluationReport) -> None:
        episodes = self._open_episodes()
        inhibitors = self._inhibitors(episodes)
        group_wait = timedelta(seconds=self.config.group_wait_s)
        repeat = timedelta(seconds=self.config.repeat_interval_s)
        fresh: dict[str, list[dict[str, Any]]] = defaultdict(list)
        due: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for fp, ep in episodes.items():
            if ep["state"] != "firing":
                continue
            labels = dict(ep["labels"] or {})
            if silenced_by(silences, ep["rule_id"], labels, ep["severity"]):
                report.silenced.append(fp)
                continue
            if self._inhibited_by(labels, inhibitors, fp):
                report.inhibited.append(fp)
                continue
            key = group_key(ep["rule_id"], labels)
            if ep["last_notified_at"] is None:
                fresh[key].append(ep)
            elif now - ep["last_notified_at"] >= repeat:
                due[key].append(ep)
        for transition, batches in (("firing", fresh), ("repeat", due)):
            for key, members in sorted(batches.items()):
                if transition == "firing" and now - min(ep["fired_at"] for ep in members) < group_wait:
                    continue  # still gathering the group
                self._notify_group(transition, key, members, now, report)

    def _notify_group(
        self, transition: Transition, key: str, members: list[dict[str, Any]], now: datetime, report: EvaluationReport
    ) -> None:
        e = alert_episodes
        members = sorted(members, key=lambda ep: ep["id"])
        rule = self._rules.get(members[0]["rule_id"])
        views = [self._view(ep, "firing", now=now) for ep in members]
        try:
            with self._writer.begin() as connection:
                for ep in members:
                    condition = (
                        e.c.last_notified_at.is_(None)
                        if transition == "firing"
                        else e.c.last_notified_at <= now - timedelta(seconds=self.config.repeat_interval_s)
                    )
                    updated = connection.execute(
                        e.update()
                        .where(e.c.id == ep["id"], e.c.state == "firing", condition)
                        .values(last_notified_at=now)
                    ).rowcount
                    if updated != 1:
                        raise _Conflict(ep["fingerprint"])
                rows, messages = self._write_message(connection, transition, key, rule, views, now)
        except (_Conflict, sa.exc.OperationalError) as exc:
            if isinstance(exc, sa.exc.OperationalError) and not _is_contention(exc):
                raise
            report.conflicts += 1
            return
        report.notifications += rows
        report.messages += messages

    # --- messages ---------------------------------------------------------------------------------------------------

    def _view(
        self,
        ep: Mapping[str, Any],
        state: str,
        *,
        now: datetime,
        summary: str | None = None,
        value: float | None = None,
    ) -> AlertView:
        rule = self._rules.get(ep["rule_id"])
        return AlertView(
            rule_id=ep["rule_id"],
            fingerprint=ep["fingerprint"],
            labels={str(k): str(v) for k, v in dict(ep["labels"] or {}).items()},
            severity=ep["severity"],
            state=state,  # type: ignore[arg-type]
            summary=summary if summary is not None else (ep["summary"] or ""),
            value=value if value is not None else ep["value"],
            threshold=ep["threshold"],
            window_s=rule.window_s if rule is not None else None,
            started_at=ep["fired_at"] or ep["pending_since"],
            resolved_at=now if state == "resolved" else None,
            episode_id=int(ep["id"]),
        )

    def _title(self, transition: str, key: str, rule: Rule | None, views: list[AlertView]) -> str:
        word = {"firing": "FIRING", "resolved": "RESOLVED", "repeat": "STILL FIRING", "test": "TEST"}[transition]
        name = rule.display_title if rule is not None else views[0].rule_id
        provider = views[0].labels.get("provider")
        parts = [f"[{word}] {name}"]
        if provider:
            parts.append(provider)
        if len(views) > 1:
            parts.append(f"{len(views)} alerts")
        return " · ".join(parts)

    def _write_message(
        self,
        connection: sa.Connection,
        transition: Transition,
        key: str,
        rule: Rule | None,
        views: list[AlertView],
        now: datetime,
    ) -> tuple[int, list[tuple[str, str, str]]]:
        """One outbox row per channel that takes at least one of these alerts (severity routing; a channel is never
        told about its own failure). Returns (rows, [(transition, group_key, channel)])."""
        rows = []
        messages = []
        for channel in self.config.channels:
            chosen = [v for v in views if channel.accepts(v.severity) and v.labels.get("channel") != channel.name]
            if not chosen:
                continue
            message = Message(
                transition=transition,
                group_key=key,
                title=self._title(transition, key, rule, chosen),
                alerts=tuple(chosen),
                dashboard_url=self.config.dashboard_url,
                created_at=now,
            )
            rows.append(
                {
                    "created_at": now,
                    "channel": channel.name,
                    "transition": transition,
                    "group_key": key[:200],
                    "episode_ids": [v.episode_id for v in chosen],
                    "message": message.to_json(),
                    "next_attempt_at": now,
                }
            )
            messages.append((transition, key, channel.name))
        if rows:
            connection.execute(alert_notifications.insert(), rows)
        return len(rows), messages


def _is_contention(exc: sa.exc.OperationalError) -> bool:
    """A deadlock / serialization failure / busy database: another evaluator is at it; not a broken store."""
    text = str(exc.orig or exc).lower()
    return any(word in text for word in ("deadlock", "could not serialize", "database is locked"))


def describe_rule(rule: Rule) -> dict[str, Any]:
    """A rule as the CLI and README print it."""
    return {
        "id": rule.id,
        "kind": rule.kind,
        "threshold": rule.threshold,
        "unit": rule.spec.unit,
        "window": format_duration(rule.window_s) if rule.window_s else None,
        "for": format_duration(rule.for_s) if rule.for_s else "0",
        "min_sample": rule.min_sample,
        "severity": rule.severity,
        "scope": rule.scope,
        "source": rule.source,
        "title": rule.display_title,
    }
