"""The alert evaluator: readings in, episodes and outbox rows out — exactly once, across restarts and workers.

It is the persistence around the pure state machine (:func:`pulsegate.core.alerts.transitions.transition`). Each
:meth:`AlertEvaluator.evaluate` has two phases, each a short transaction per *group* (rule × provider):

1. **Transitions.** Every rule's readings (:mod:`pulsegate.core.alerts.kinds`) and the open episodes
   (:mod:`pulsegate.core.alerts.episode_store`) go through the transition function; what changed is written, conditional
   on the state it was decided from, with the *resolved* messages it produced (:mod:`pulsegate.core.alerts.outbox`), and
   every state change is handed to the subscribers (budget enforcement, :mod:`pulsegate.core.alerts.enforcement`) in the
   same transaction.
2. **Notifications.** Firing and repeat messages per group (:mod:`pulsegate.core.alerts.notifier`).

When two evaluators race, the second finds nothing to change, rolls its group back and writes nothing — a
notification is written once, and a crash between phases only delays it to the next evaluation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from pulsegate.core.alerts import episode_store, inhibition, kinds, notifier, outbox
from pulsegate.core.alerts.config import AlertConfig
from pulsegate.core.alerts.enforcement import BudgetEnforcement
from pulsegate.core.alerts.episode import Episode, fingerprint, group_key
from pulsegate.core.alerts.reading import Reading
from pulsegate.core.alerts.reports import AlertStatus, EvaluationReport
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.alerts.signal_context import SignalContext
from pulsegate.core.alerts.silences import Silence, active_silences, silenced_by
from pulsegate.core.alerts.subscriber import Subscriber
from pulsegate.core.alerts.transitions import Event, Notification, Observation, events, transition
from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.store.engine import SQLITE_IMMEDIATE

__all__ = ["AlertEvaluator", "EvaluationReport", "fingerprint", "group_key"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Candidate:
    rule: Rule
    labels: dict[str, str]
    reading: Reading


@dataclass(frozen=True, slots=True)
class _Step:
    """One episode's move in a group transaction: what it was, what it becomes, and the messages it writes."""

    before: Episode | None
    after: Episode
    rule: Rule | None
    notifications: list[Notification]


@dataclass
class _Written:
    """What one group's committed transaction did, for the report."""

    moved: list[tuple[Event, str]] = field(default_factory=list)  # (event, fingerprint)
    commands: list[int] = field(default_factory=list)
    rows: int = 0
    messages: list[tuple[str, str, str]] = field(default_factory=list)


class AlertEvaluator:
    """Evaluates ``config``'s rules against the store. One per worker; cheap to recreate (all state lives in the
    database). ``subscribers`` hear of every state change (default: budget enforcement)."""

    def __init__(
        self,
        store: sa.Engine,
        config: AlertConfig,
        clock: Clock = SYSTEM_CLOCK,
        subscribers: Sequence[Subscriber] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.rules = {rule.id: rule for rule in config.rules}
        self._writer = store.execution_options(**{SQLITE_IMMEDIATE: True})
        if subscribers is None:
            subscribers = (BudgetEnforcement(store, self._writer, self.rules, config.heartbeat_interval_s),)
        self.subscribers = tuple(subscribers)

    # --- the public entry points ------------------------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> EvaluationReport:
        """One evaluation at ``now`` (default: the clock): transitions, then notifications. Blocking I/O."""
        now = now or self.clock.now()
        report = EvaluationReport(now)
        candidates, failed = self._candidates(now, report)
        silences = active_silences(self.store, now)
        opened = episode_store.open_episodes(self.store)
        self._transitions(now, candidates, failed, opened, silences, report)
        still_open = episode_store.open_episodes(self.store).values()
        for subscriber in self.subscribers:
            report.commands += subscriber.after_transitions(still_open, now)
        episodes = episode_store.open_episodes(self.store)
        notifier.send_due(self._writer, self.config, self.rules, episodes, silences, now, report)
        return report

    def status(self, now: datetime | None = None) -> list[AlertStatus]:
        """Open episodes, firing first, each with the silences and the inhibiting alert that mute it."""
        now = now or self.clock.now()
        episodes = episode_store.open_episodes(self.store)
        silences = active_silences(self.store, now)
        inhibitors = inhibition.sources(episodes.values(), self.rules, now)
        out = [
            AlertStatus(
                episode_id=ep.row_id,
                rule_id=ep.rule_id,
                fingerprint=fp,
                labels=dict(ep.labels),
                severity=ep.severity,
                state=ep.state,
                summary=ep.summary,
                value=ep.value,
                threshold=ep.threshold,
                pending_since=ep.pending_since,
                fired_at=ep.fired_at,
                last_notified_at=ep.last_notified_at,
                silenced_by=tuple(silenced_by(silences, ep.rule_id, ep.labels, ep.severity)),
                inhibited_by=inhibition.inhibited_by(ep.labels, inhibitors),
            )
            for fp, ep in episodes.items()
        ]
        return sorted(out, key=lambda a: (a.state != "firing", a.rule_id, a.fingerprint))

    # --- reading ------------------------------------------------------------------------------------------------

    def _candidates(self, now: datetime, report: EvaluationReport) -> tuple[dict[str, _Candidate], set[str]]:
        """Readings of every rule by fingerprint, and the ids of rules whose signal failed (their episodes hold)."""
        ctx = SignalContext(
            self.store,
            now,
            heartbeat_interval_s=self.config.heartbeat_interval_s,
            probe_interval_s=self.config.probe_interval_s,
            channel_names=self.config.channel_names,
        )
        found: dict[str, _Candidate] = {}
        failed: set[str] = set()
        for rule in self.config.rules:
            try:
                readings = kinds.read(rule, ctx)
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

    # --- phase 1: transitions ------------------------------------------------------------------------------------

    def _transitions(
        self,
        now: datetime,
        candidates: dict[str, _Candidate],
        failed: set[str],
        opened: dict[str, Episode],
        silences: list[Silence],
        report: EvaluationReport,
    ) -> None:
        groups: dict[str, list[_Step]] = defaultdict(list)
        for fp in sorted(set(candidates) | set(opened)):
            cand, ep = candidates.get(fp), opened.get(fp)
            if ep is not None and ep.rule_id in failed:
                continue  # no evidence either way
            step = self._step(now, fp, cand, ep, silences)
            if step is not None:
                groups[group_key(step.after.rule_id, step.after.labels)].append(step)
        for key, steps in sorted(groups.items()):
            try:
                with self._writer.begin() as connection:
                    written = self._write_group(connection, key, steps, now)
            except (episode_store.EpisodeConflict, sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                if isinstance(exc, sa.exc.OperationalError) and not episode_store.is_contention(exc):
                    raise
                report.conflicts += 1
                log.info("alert group %s changed under another evaluator; left to it", key)
                continue
            for event, fp in written.moved:
                report.record(event, fp)
            report.notifications += written.rows
            report.messages += written.messages
            report.commands += written.commands

    def _step(
        self, now: datetime, fp: str, cand: _Candidate | None, ep: Episode | None, silences: list[Silence]
    ) -> _Step | None:
        """One fingerprint through the state machine; None when nothing is to be written."""
        if cand is not None:
            rule, labels, reading = cand.rule, cand.labels, cand.reading
        else:
            assert ep is not None
            rule, labels, reading = self.rules.get(ep.rule_id), ep.labels, None
        muted = ep is not None and bool(silenced_by(silences, ep.rule_id, labels, ep.severity))
        observation = Observation(fp, labels, reading, silenced=muted)
        after, notifications = transition(ep, observation, now, rule)
        if after is None or after == ep:
            return None
        return _Step(ep, after, rule, notifications)

    def _write_group(self, connection: sa.Connection, key: str, steps: list[_Step], now: datetime) -> _Written:
        """One group's steps in one transaction: the episodes, the subscribers' writes, one resolved message."""
        written = _Written()
        resolved: list[tuple[Notification, Rule | None]] = []
        for step in steps:
            episode_store.write(connection, step.before, step.after)
            happened = events(step.before, step.after)
            written.moved += [(event, step.after.fingerprint) for event in happened]
            if happened:
                for subscriber in self.subscribers:
                    written.commands += subscriber.on_transition(connection, step.before, step.after, step.rule, now)
            resolved += [(note, step.rule) for note in step.notifications]
        if resolved:
            rule = next((r for _, r in resolved if r is not None), None)
            views = [outbox.view(note.episode, r, "resolved", now=now) for note, r in resolved]
            written.rows, written.messages = outbox.write_message(
                connection, self.config.channels, self.config.dashboard_url, "resolved", key, rule, views, now
            )
        return written
