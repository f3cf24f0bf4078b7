"""The alert state machine: readings in, episodes and outbox rows out — exactly once, across restarts and workers.

Each :meth:`AlertEvaluator.evaluate` has two phases, each a short transaction per *group* (rule × provider):

1. **Transitions.** Every rule's readings (:mod:`core.alerts.signals`) move episodes inactive → pending → firing
   → resolved (``for``: how long a breach must last before firing; ``min_sample``: too few calls hold the current
   state). A firing episode resolves once its value is back past the rule's resolve threshold and has stayed
   there for ``keep_firing_for`` (``clear_since`` remembers since when); if its firing was notified, a
   *resolved* message stating the value that resolved it is written to the outbox in the same transaction.
2. **Notifications.** Firing episodes not yet notified go out as one *firing* message per group once the oldest
   has waited ``group_wait`` (alerts that start together arrive together); notified ones get a *repeat* message
   every ``repeat_interval``. ``last_notified_at`` is set in the transaction that writes the outbox rows.

Every write is conditional on the state it was decided from (``WHERE state = …``, ``last_notified_at IS NULL``,
the partial unique index on open fingerprints): when two evaluators race, the second finds nothing to change,
rolls its group back and writes nothing — a notification is written once, and a crash between phases only delays
it to the next evaluation. Silenced alerts (:mod:`core.alerts.silences`) and inhibited per-key alerts
(:mod:`core.alerts.inhibition`) change state but are not notified. Messages (:mod:`core.alerts.outbox`) are routed
to the channels whose severities include the alert's; ``channel_failing`` alerts go to the *other* channels.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.alerts import enforcement, inhibition, outbox, signals
from core.alerts.config import AlertConfig
from core.alerts.model import AlertView, Transition
from core.alerts.reports import AlertStatus, EvaluationReport
from core.alerts.rules import Rule
from core.alerts.silences import Silence, active_silences, silenced_by
from core.clock import SYSTEM_CLOCK, Clock
from core.store.engine import SQLITE_IMMEDIATE
from core.store.tables import alert_episodes

log = logging.getLogger(__name__)

OPEN_STATES = ("pending", "firing")
SUMMARY_MAX = 500


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
    summary: str | None = None  # the episode's text after the change (None: the reading's)
    value: float | None = None  # the episode's value after the change when there is no reading (None: kept)
    clear_since: datetime | None = None  # firing, back past the resolve threshold since (keep_firing_for)

    def text(self) -> str | None:
        if self.summary is not None:
            return self.summary[:SUMMARY_MAX]
        if self.reading is None:
            return None
        firing = self.episode is not None and self.episode["state"] == "firing"
        return self.reading.summary_for(firing)[:SUMMARY_MAX]


class AlertEvaluator:
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

    # --- the public entry points ------------------------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> EvaluationReport:
        """One evaluation at ``now`` (default: the clock): transitions, then notifications. Blocking I/O."""
        now = now or self.clock.now()
        report = EvaluationReport(now)
        candidates, failed = self._candidates(now, report)
        silences = active_silences(self.engine, now)
        opened = self._open_episodes()
        self._transitions(now, candidates, failed, opened, silences, report)
        report.commands += enforcement.reenforce(
            self.engine,
            self._writer,
            self._open_episodes().values(),
            self._rules,
            now,
            self.config.heartbeat_interval_s,
        )
        self._notifications(now, silences, report)
        return report

    def status(self, now: datetime | None = None) -> list[AlertStatus]:
        """Open episodes, firing first, each with the silences and the inhibiting alert that mute it."""
        now = now or self.clock.now()
        episodes = self._open_episodes()
        silences = active_silences(self.engine, now)
        inhibitors = inhibition.sources(episodes.values(), self._rules, now)
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
                    inhibited_by=inhibition.inhibited_by(labels, inhibitors),
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
        groups: dict[str, list[_Change]] = defaultdict(list)
        for fp in sorted(set(candidates) | set(opened)):
            cand = candidates.get(fp)
            ep = opened.get(fp)
            if ep is not None and ep["rule_id"] in failed:
                continue  # no evidence either way
            change = self._decide(now, fp, cand, ep, silences)
            if change is not None:
                rule_id = cand.rule.id if cand is not None else str(ep["rule_id"] if ep is not None else "")
                groups[group_key(rule_id, change.labels)].append(change)
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

    def _decide(
        self,
        now: datetime,
        fp: str,
        cand: _Candidate | None,
        ep: dict[str, Any] | None,
        silences: list[Silence],
    ) -> _Change | None:
        """What happens to one fingerprint: open, fire, update (values, ``clear_since``) or resolve."""
        rule = cand.rule if cand is not None else self._rules.get(ep["rule_id"]) if ep is not None else None
        labels = cand.labels if cand is not None else dict(ep["labels"] or {}) if ep is not None else {}
        reading = cand.reading if cand is not None else None
        if ep is None:
            if reading is not None and reading.enough and reading.breached:
                assert rule is not None
                return _Change("open", fp, rule, labels, None, reading)
            return None
        if rule is None:  # the rule was removed or turned off
            return self._resolve(fp, None, labels, ep, None, silences, f"rule {ep['rule_id']!r} is no longer in force")
        if reading is not None and not reading.enough:  # thin evidence: hold the state
            return _Change("update", fp, rule, labels, ep, reading, clear_since=ep["clear_since"])
        if ep["state"] == "pending":
            if reading is not None and reading.breached:
                if now - ep["pending_since"] >= timedelta(seconds=rule.for_s):
                    return _Change("fire", fp, rule, labels, ep, reading)
                return _Change("update", fp, rule, labels, ep, reading)
            return self._resolve(fp, rule, labels, ep, reading, silences)
        if reading is not None and reading.keeps_firing:
            return _Change("update", fp, rule, labels, ep, reading)  # clear_since back to None
        clear_since = ep["clear_since"] or now
        if now - clear_since >= timedelta(seconds=rule.keep_firing_for_s):
            return self._resolve(fp, rule, labels, ep, reading, silences)
        text, value = (None, None) if reading is not None else signals.gone(rule, labels)
        return _Change("update", fp, rule, labels, ep, reading, summary=text, value=value, clear_since=clear_since)

    def _resolve(
        self,
        fp: str,
        rule: Rule | None,
        labels: dict[str, str],
        ep: dict[str, Any],
        reading: signals.Reading | None,
        silences: list[Silence],
        summary: str | None = None,
    ) -> _Change:
        """Resolve (or close a pending) episode; a resolved message goes to the channels told it fired, unless a
        silence mutes it (inhibition does not: the receiver was told it fired, it is told it ended)."""
        muted = bool(silenced_by(silences, ep["rule_id"], labels, ep["severity"]))
        notify = ep["state"] == "firing" and ep["last_notified_at"] is not None and not muted
        value = None
        if summary is None and reading is None and rule is not None:
            summary, value = signals.gone(rule, labels)
        return _Change("resolve", fp, rule, labels, ep, reading, notify_resolved=notify, summary=summary, value=value)

    @staticmethod
    def _value_changed(change: _Change) -> bool:
        ep, reading = change.episode, change.reading
        if ep is None:
            return True
        if ep["clear_since"] != change.clear_since:
            return True
        value = reading.value if reading is not None else change.value if change.value is not None else ep["value"]
        return ep["value"] != value or (ep["summary"] or "") != (change.text() or ep["summary"] or "")

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
                    "summary": change.text(),
                }
                connection.execute(e.insert().values(**row))
                done["transitions"].append(("pending", change.fingerprint))
                if firing:
                    done["transitions"].append(("firing", change.fingerprint))
                    done["commands"] += enforcement.on_fire(connection, rule, change.labels, now)
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
                        clear_since=None,
                        value=reading.value,
                        threshold=reading.threshold,
                        summary=change.text(),
                    )
                ).rowcount
                if updated != 1:
                    raise _Conflict(change.fingerprint)
                done["transitions"].append(("firing", change.fingerprint))
                done["commands"] += enforcement.on_fire(connection, rule, change.labels, now)
            elif change.action == "update":
                if self._value_changed(change):
                    values: dict[str, Any] = {"clear_since": change.clear_since, "summary": change.text()}
                    if reading is not None:
                        values.update(value=reading.value, threshold=reading.threshold)
                    elif change.value is not None:
                        values["value"] = change.value
                    connection.execute(e.update().where(e.c.id == ep["id"], e.c.state == ep["state"]).values(**values))
            else:  # resolve
                values = {"state": "resolved", "resolved_at": now, "summary": change.text() or ep["summary"]}
                # the value that resolved it; None when the label set is gone and nothing is left to measure
                values["value"] = reading.value if reading is not None else change.value
                updated = connection.execute(
                    e.update().where(e.c.id == ep["id"], e.c.state == ep["state"]).values(**values)
                ).rowcount
                if updated != 1:
                    raise _Conflict(change.fingerprint)
                done["transitions"].append(("resolved", change.fingerprint))
                if ep["state"] == "firing":
                    done["commands"] += enforcement.on_resolve(connection, ep, now)
                if change.notify_resolved:
                    resolved_rule = resolved_rule or rule
                    resolved_views.append(
                        outbox.view(
                            ep, rule, "resolved", summary=values["summary"] or "", value=values["value"], now=now
                        )
                    )
        if resolved_views:
            rows, messages = self._write("resolved", connection, key, resolved_rule, resolved_views, now)
            done["rows"] += rows
            done["messages"] += messages
        return done

    def _write(
        self,
        transition: Transition,
        connection: sa.Connection,
        key: str,
        rule: Rule | None,
        views: list[AlertView],
        now: datetime,
    ) -> tuple[int, list[tuple[str, str, str]]]:
        return outbox.write_message(
            connection, self.config.channels, self.config.dashboard_url, transition, key, rule, views, now
        )

    # --- phase 2: notifications -----------------------------------------------------------------------------------

    def _notifications(self, now: datetime, silences: list[Silence], report: EvaluationReport) -> None:
        episodes = self._open_episodes()
        inhibitors = inhibition.sources(episodes.values(), self._rules, now)
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
            if inhibition.inhibited_by(labels, inhibitors):
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
        views = [outbox.view(ep, rule, "firing", now=now) for ep in members]
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
                rows, messages = self._write(transition, connection, key, rule, views, now)
        except (_Conflict, sa.exc.OperationalError) as exc:
            if isinstance(exc, sa.exc.OperationalError) and not _is_contention(exc):
                raise
            report.conflicts += 1
            return
        report.notifications += rows
        report.messages += messages


def _is_contention(exc: sa.exc.OperationalError) -> bool:
    """A deadlock / serialization failure / busy database: another evaluator is at it; not a broken store."""
    text = str(exc.orig or exc).lower()
    return any(word in text for word in ("deadlock", "could not serialize", "database is locked"))
