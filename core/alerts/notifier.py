"""Phase 2 of an evaluation: firing and repeat messages, per group, for the firing episodes that are due one.

An episode due a message (:func:`pulsegate.core.alerts.transitions.notification_due`) is held back while a silence
matches it (:mod:`pulsegate.core.alerts.silences`) or a provider-wide alert inhibits it
(:mod:`pulsegate.core.alerts.inhibition`). The rest go out as one message per group and channel: never-notified ones as
*firing* once the group's oldest has waited ``group_wait`` (alerts that start together arrive together), notified ones
as *repeat* every ``repeat_interval``. ``last_notified_at`` is set in the transaction that writes the outbox rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from pulsegate.core.alerts import episode_store, inhibition, outbox
from pulsegate.core.alerts.config import AlertConfig
from pulsegate.core.alerts.episode import Episode, group_key
from pulsegate.core.alerts.reports import EvaluationReport
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.alerts.silences import Silence, silenced_by
from pulsegate.core.alerts.transitions import notification_due


def send_due(
    writer: sa.Engine,
    config: AlertConfig,
    rules: Mapping[str, Rule],
    episodes: Mapping[str, Episode],
    silences: list[Silence],
    now: datetime,
    report: EvaluationReport,
) -> None:
    """Write the firing and repeat messages due at ``now`` (fingerprints held back go to ``report``)."""
    inhibitors = inhibition.sources(episodes.values(), rules, now)
    batches: dict[str, dict[str, list[Episode]]] = {"firing": defaultdict(list), "repeat": defaultdict(list)}
    for fp, ep in episodes.items():
        if ep.state != "firing":
            continue
        if silenced_by(silences, ep.rule_id, ep.labels, ep.severity):
            report.silenced.append(fp)
            continue
        if inhibition.inhibited_by(ep.labels, inhibitors):
            report.inhibited.append(fp)
            continue
        due = notification_due(ep, now, config.repeat_interval_s)
        if due is not None:
            batches[due][group_key(ep.rule_id, ep.labels)].append(ep)
    group_wait = timedelta(seconds=config.group_wait_s)
    for transition in ("firing", "repeat"):
        for key, members in sorted(batches[transition].items()):
            if transition == "firing" and now - min(_fired_at(ep) for ep in members) < group_wait:
                continue  # still gathering the group
            _send_group(writer, config, rules, transition, key, members, now, report)


def _fired_at(episode: Episode) -> datetime:
    assert episode.fired_at is not None  # a firing episode has fired
    return episode.fired_at


def _send_group(
    writer: sa.Engine,
    config: AlertConfig,
    rules: Mapping[str, Rule],
    transition: Literal["firing", "repeat"],
    key: str,
    members: list[Episode],
    now: datetime,
    report: EvaluationReport,
) -> None:
    members = sorted(members, key=lambda ep: ep.row_id)
    rule = rules.get(members[0].rule_id)
    views = [outbox.view(ep, rule, "firing", now=now) for ep in members]
    try:
        with writer.begin() as connection:
            for ep in members:
                episode_store.mark_notified(connection, ep, transition, now, config.repeat_interval_s)
            rows, messages = outbox.write_message(
                connection, config.channels, config.dashboard_url, transition, key, rule, views, now
            )
    except (episode_store.EpisodeConflict, sa.exc.OperationalError) as exc:
        if isinstance(exc, sa.exc.OperationalError) and not episode_store.is_contention(exc):
            raise
        report.conflicts += 1
        return
    report.notifications += rows
    report.messages += messages
