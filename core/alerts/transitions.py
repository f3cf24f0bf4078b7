"""The alert state machine as one pure function: (episode, observation, now, rule) → (next episode, notifications).

States and moves (``for``, ``keep_firing_for`` and the resolve threshold are the rule's)::

    (none) ──breach──▶ pending ──breached for ``for``──▶ firing ──clear for ``keep_firing_for``──▶ resolved
       └────breach, ``for`` = 0──────────────────────────▶ firing
                       pending ──not breached / not reported──▶ resolved (never notified)

* A reading with too few calls (``enough`` False) holds the state, whatever it says.
* A firing episode stays firing while its value has not got back past the resolve threshold (``holding``); once
  it has (or the label set is no longer reported), ``clear_since`` remembers since when, and it resolves after
  ``keep_firing_for`` of that. A breach in between sets ``clear_since`` back to None.
* A rule that is no longer in force resolves its open episodes at once.
* Only one transition here notifies: a *resolved* message for a firing episode whose firing was notified, unless
  a silence mutes it. *Firing* and *repeat* messages are decided per group after the transitions
  (:func:`notification_due`; ``group_wait`` gathers a group), so alerts that start together arrive together.
* Anything else (a new value, a new text) is an update in place; a change of threshold alone is not written.

No I/O and no clock: ``now`` is the only time. :mod:`pulsegate.core.alerts.evaluator` loads the episodes, calls this and
writes the difference; ``tests/alerts/test_transition_table.py`` is its truth table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from pulsegate.core.alerts.episode import SUMMARY_MAX, Episode
from pulsegate.core.alerts.model import Transition
from pulsegate.core.alerts.reading import Reading, gone
from pulsegate.core.alerts.rule_fields import RuleFields

#: What a step reports: an episode opened (pending), fired, or resolved (see :func:`events`).
Event = Literal["pending", "firing", "resolved"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What one evaluation saw of one label set. ``reading`` is None when the rule no longer reports the label set;
    ``silenced`` when an active silence matches the alert (it changes state but sends nothing)."""

    fingerprint: str
    labels: dict[str, str]
    reading: Reading | None
    silenced: bool = False


@dataclass(frozen=True, slots=True)
class Notification:
    """A message an episode is due: ``transition`` is the message's kind, ``episode`` the state it states."""

    transition: Transition
    episode: Episode


Outcome = tuple[Episode | None, list[Notification]]


def transition(episode: Episode | None, observation: Observation, now: datetime, rule: RuleFields | None) -> Outcome:
    """The next state of one label set's episode (None: there is none) and the notifications that move writes.
    ``rule`` is None when the episode's rule is no longer in force. An unchanged episode is returned as is."""
    reading = observation.reading
    if episode is None:
        if rule is not None and reading is not None and reading.enough and reading.breached:
            return _open(rule, observation, reading, now), []
        return None, []
    if rule is None:
        return _resolve(episode, observation, None, now, f"rule {episode.rule_id!r} is no longer in force", None)
    if reading is not None and not reading.enough:  # thin evidence: hold the state
        return _update(episode, reading, episode.clear_since), []
    if episode.state == "pending":
        if reading is None or not reading.breached:
            return _resolve(episode, observation, rule, now)
        if now - episode.pending_since >= timedelta(seconds=rule.for_s):
            return _fire(episode, reading, now), []
        return _update(episode, reading, None), []
    if reading is not None and reading.keeps_firing:
        return _update(episode, reading, None), []
    clear_since = episode.clear_since or now
    if now - clear_since >= timedelta(seconds=rule.keep_firing_for_s):
        return _resolve(episode, observation, rule, now)
    if reading is None:
        text, value = gone(rule, observation.labels)
        return _update(episode, None, clear_since, text=text, value=value), []
    return _update(episode, reading, clear_since), []


def notification_due(episode: Episode, now: datetime, repeat_interval_s: float) -> Literal["firing", "repeat"] | None:
    """The message a firing episode is due at ``now`` (before silences, inhibition and ``group_wait``): *firing*
    if it was never notified, *repeat* once ``repeat_interval_s`` has passed since it last was, else none."""
    if episode.state != "firing":
        return None
    if episode.last_notified_at is None:
        return "firing"
    if now - episode.last_notified_at >= timedelta(seconds=repeat_interval_s):
        return "repeat"
    return None


def events(before: Episode | None, after: Episode | None) -> tuple[Event, ...]:
    """The state changes from ``before`` to ``after``: an episode that opens firing is both pending and firing."""
    if after is None or (before is not None and before.state == after.state):
        return ()
    if before is None:
        return ("pending", "firing") if after.state == "firing" else ("pending",)
    return (after.state,)


# --- the moves ------------------------------------------------------------------------------------------------------


def _text(reading: Reading, firing: bool) -> str:
    return reading.summary_for(firing)[:SUMMARY_MAX]


def _open(rule: RuleFields, observation: Observation, reading: Reading, now: datetime) -> Episode:
    firing = rule.for_s <= 0
    return Episode(
        rule_id=rule.id,
        fingerprint=observation.fingerprint,
        labels=observation.labels,
        severity=rule.severity,
        state="firing" if firing else "pending",
        pending_since=now,
        fired_at=now if firing else None,
        value=reading.value,
        threshold=reading.threshold,
        summary=_text(reading, False),
    )


def _fire(episode: Episode, reading: Reading, now: datetime) -> Episode:
    return replace(
        episode,
        state="firing",
        fired_at=now,
        clear_since=None,
        value=reading.value,
        threshold=reading.threshold,
        summary=_text(reading, False),
    )


def _update(
    episode: Episode,
    reading: Reading | None,
    clear_since: datetime | None,
    *,
    text: str | None = None,
    value: float | None = None,
) -> Episode:
    """The same state with the reading's value and text (or, with no reading, ``text`` and ``value`` — a None
    value keeps the last one). Unchanged unless ``clear_since``, the value or the text moved."""
    summary = text[:SUMMARY_MAX] if text is not None else _text(reading, episode.state == "firing") if reading else None
    new_value = reading.value if reading is not None else value if value is not None else episode.value
    if (
        episode.clear_since == clear_since
        and episode.value == new_value
        and (episode.summary or "") == (summary or episode.summary or "")
    ):
        return episode
    return replace(
        episode,
        clear_since=clear_since,
        summary=summary,
        value=new_value,
        threshold=reading.threshold if reading is not None else episode.threshold,
    )


def _resolve(
    episode: Episode,
    observation: Observation,
    rule: RuleFields | None,
    now: datetime,
    summary: str | None = None,
    value: float | None = None,
) -> Outcome:
    """Resolve (or close a pending) episode. A resolved message goes to the channels told it fired, unless a
    silence mutes it (inhibition does not: the receiver was told it fired, it is told it ended)."""
    reading = observation.reading
    if summary is None and reading is None and rule is not None:
        summary, value = gone(rule, observation.labels)
    if summary is not None:
        text: str | None = summary[:SUMMARY_MAX]
    else:
        text = _text(reading, episode.state == "firing") if reading is not None else None
    resolved = replace(
        episode,
        state="resolved",
        resolved_at=now,
        summary=text or episode.summary,
        value=reading.value if reading is not None else value,
    )
    notify = episode.state == "firing" and episode.last_notified_at is not None and not observation.silenced
    return resolved, [Notification("resolved", resolved)] if notify else []
