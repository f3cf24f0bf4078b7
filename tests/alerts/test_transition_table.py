"""The alert state machine's truth table: every (state, observation) row of :func:`transition` with the exact next
episode and notifications, and when a firing episode is due a message (:func:`notification_due`). No database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pulsegate.core.alerts.episode import Episode
from pulsegate.core.alerts.reading import Reading
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.alerts.transitions import Notification, Observation, events, notification_due, transition

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LABELS = {"provider": "anthropic"}
FP = "f" * 32
#: Fires below 95 % after 5 min, resolves at 97 % or more after 5 min of that.
RULE = Rule(
    id="success_rate_low",
    kind="success_rate_below",
    threshold=95.0,
    resolve_threshold=97.0,
    window_s=900,
    for_s=300,
    keep_firing_for_s=300,
    min_sample=20,
    severity="critical",
)
INSTANT = replace(RULE, for_s=0.0, keep_firing_for_s=0.0)
GONE = "anthropic: no calls in the last 15m"  # what a windowed kind says when its label set has no calls


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def reading(value: float, *, enough: bool = True) -> Reading:
    """A success-rate reading as :func:`compared_reading` makes it: breached below 95, holding below 97."""
    return Reading(
        LABELS,
        value,
        breached=enough and value < 95,
        summary=f"breached {value}" if value < 95 else f"back {value}",
        threshold=95.0,
        enough=enough,
        holding=enough and value < 97,
        holding_summary=f"between {value}",
        resolve_threshold=97.0,
    )


def seen(value: float | None, *, enough: bool = True, silenced: bool = False) -> Observation:
    return Observation(FP, LABELS, None if value is None else reading(value, enough=enough), silenced)


PENDING = Episode(
    "success_rate_low",
    FP,
    LABELS,
    "critical",
    "pending",
    ago(60),
    value=90.0,
    threshold=95.0,
    summary="breached 90.0",
    id=7,
)
FIRING = replace(PENDING, state="firing", pending_since=ago(900), fired_at=ago(600), last_notified_at=ago(570))
UNNOTIFIED = replace(FIRING, last_notified_at=None)
CLEARING = replace(FIRING, clear_since=ago(120), value=98.0, summary="back 98.0")
CLEARED = replace(FIRING, clear_since=ago(300), value=98.0, summary="back 98.0")


def opened(state: str, value: float = 90.0) -> Episode:
    return Episode(
        "success_rate_low",
        FP,
        LABELS,
        "critical",
        state,  # type: ignore[arg-type]
        NOW,
        fired_at=NOW if state == "firing" else None,
        value=value,
        threshold=95.0,
        summary=f"breached {value}",
    )


def resolved(ep: Episode, summary: str, value: float | None) -> Episode:
    return replace(ep, state="resolved", resolved_at=NOW, summary=summary, value=value)


def told(ep: Episode) -> list[Notification]:
    return [Notification("resolved", ep)]


# (name, episode before, observation, rule, episode after, notifications)
TABLE = [
    # no episode yet
    ("none + breach opens pending", None, seen(90.0), RULE, opened("pending"), []),
    ("none + breach with for 0 opens firing", None, seen(90.0), INSTANT, opened("firing"), []),
    ("none + no breach: nothing", None, seen(99.0), RULE, None, []),
    ("none + between thresholds: nothing", None, seen(96.0), RULE, None, []),
    ("none + thin evidence: nothing", None, seen(50.0, enough=False), RULE, None, []),
    ("none + rule gone: nothing", None, seen(90.0), None, None, []),
    # pending
    ("pending + breach before for: value moves", PENDING, seen(80.0), RULE,
     replace(PENDING, value=80.0, summary="breached 80.0"), []),
    ("pending + same breach: unchanged", PENDING, seen(90.0), RULE, PENDING, []),
    ("pending + breach after for fires", replace(PENDING, pending_since=ago(300)), seen(80.0), RULE,
     replace(PENDING, pending_since=ago(300), state="firing", fired_at=NOW, value=80.0, summary="breached 80.0"), []),
    ("pending + no breach closes it, silently", PENDING, seen(96.0), RULE,
     resolved(PENDING, "back 96.0", 96.0), []),
    ("pending + label set gone closes it", PENDING, seen(None), RULE, resolved(PENDING, GONE, None), []),
    ("pending + thin evidence holds", PENDING, seen(99.0, enough=False), RULE,
     replace(PENDING, value=99.0, summary="back 99.0"), []),
    ("pending + rule gone closes it", PENDING, seen(None), None,
     resolved(PENDING, "rule 'success_rate_low' is no longer in force", None), []),
    # firing
    ("firing + still breached: unchanged", FIRING, seen(90.0), RULE, FIRING, []),
    ("firing + breached anew: value moves", FIRING, seen(85.0), RULE,
     replace(FIRING, value=85.0, summary="breached 85.0"), []),
    ("firing + between thresholds holds", FIRING, seen(96.0), RULE,
     replace(FIRING, value=96.0, summary="between 96.0"), []),
    ("firing + breach again clears clear_since", CLEARING, seen(90.0), RULE,
     replace(CLEARING, clear_since=None, value=90.0, summary="breached 90.0"), []),
    ("firing + clear starts keep_firing_for", FIRING, seen(98.0), RULE,
     replace(FIRING, clear_since=NOW, value=98.0, summary="back 98.0"), []),
    ("firing + clear, keep_firing_for running", CLEARING, seen(98.0), RULE, CLEARING, []),
    ("firing + clear for keep_firing_for resolves, told", CLEARED, seen(99.0), RULE,
     resolved(CLEARED, "back 99.0", 99.0), told(resolved(CLEARED, "back 99.0", 99.0))),
    ("firing + clear, keep_firing_for 0 resolves at once", FIRING, seen(98.0), INSTANT,
     resolved(FIRING, "back 98.0", 98.0), told(resolved(FIRING, "back 98.0", 98.0))),
    ("firing + resolved while silenced: not told", FIRING, seen(98.0, silenced=True), INSTANT,
     resolved(FIRING, "back 98.0", 98.0), []),
    ("firing never notified resolves untold", UNNOTIFIED, seen(98.0), INSTANT,
     resolved(UNNOTIFIED, "back 98.0", 98.0), []),
    ("firing + label set gone starts keep_firing_for", FIRING, seen(None), RULE,
     replace(FIRING, clear_since=NOW, summary=GONE), []),
    ("firing + label set gone for keep_firing_for resolves", CLEARED, seen(None), RULE,
     resolved(CLEARED, GONE, None), told(resolved(CLEARED, GONE, None))),
    ("firing + thin evidence holds, clear_since kept", CLEARING, seen(99.0, enough=False), RULE,
     replace(CLEARING, value=99.0, summary="back 99.0"), []),
    ("firing + rule gone resolves at once, told", FIRING, seen(None), None,
     resolved(FIRING, "rule 'success_rate_low' is no longer in force", None),
     told(resolved(FIRING, "rule 'success_rate_low' is no longer in force", None))),
]  # fmt: skip


@pytest.mark.parametrize(("before", "observation", "rule", "after", "notifications"), [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])  # fmt: skip
def test_transition_table(
    before: Episode | None,
    observation: Observation,
    rule: Rule | None,
    after: Episode | None,
    notifications: list[Notification],
) -> None:
    assert transition(before, observation, NOW, rule) == (after, notifications)


def test_a_change_of_threshold_alone_is_not_a_change() -> None:
    moved = replace(reading(90.0), threshold=94.0)
    assert transition(FIRING, Observation(FP, LABELS, moved), NOW, RULE) == (FIRING, [])


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, opened("pending"), ("pending",)),
        (None, opened("firing"), ("pending", "firing")),
        (PENDING, replace(PENDING, state="firing"), ("firing",)),
        (PENDING, resolved(PENDING, "", None), ("resolved",)),
        (FIRING, resolved(FIRING, "", None), ("resolved",)),
        (FIRING, replace(FIRING, value=1.0), ()),
        (None, None, ()),
    ],
)
def test_events_name_each_state_change(before: Episode | None, after: Episode | None, expected: tuple) -> None:
    assert events(before, after) == expected


@pytest.mark.parametrize(
    ("episode", "expected"),
    [
        (PENDING, None),
        (UNNOTIFIED, "firing"),
        (replace(FIRING, last_notified_at=ago(3599)), None),
        (replace(FIRING, last_notified_at=ago(3600)), "repeat"),
        (resolved(FIRING, "", None), None),
    ],
)
def test_notification_due(episode: Episode, expected: str | None) -> None:
    assert notification_due(episode, NOW, repeat_interval_s=3600) == expected


def test_the_state_machine_imports_no_store() -> None:
    """Pure by construction: importing it loads neither SQLAlchemy nor pandas."""
    import subprocess
    import sys

    code = (
        "import sys, pulsegate.core.alerts.transitions; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
