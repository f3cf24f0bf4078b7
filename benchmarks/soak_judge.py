"""The soak's verdicts, as pure functions of what was recorded: which phase was in force when, the calls answered
per phase, memory growth after warm-up, and whether the alert notifications are the ones each incident should send.

An *incident* is one fault phase of one cycle. Its window runs from the phase's start to the end of that cycle
(the end of its recovery: later fault phases and the recovery phase are the time its alerts have to resolve). A
notification belongs to the incident in which its alert's episode started (``pending_since``): an episode that
starts in a later phase is a new alert, even of the same rule. Expected alerts come from
:data:`pulsegate.jobs.cli.demo.scenario.EXPECTED_ALERTS`.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pulsegate.jobs.cli.demo.scenario import ExpectedAlert

QUIET_PHASES = ("startup", "calm")
FIRING_TRANSITIONS = ("firing", "repeat")


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    cycle: int
    name: str
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


class Timeline:
    """The phases as they were applied, in order; ``at(t)`` is the one in force at ``t`` (None outside the run)."""

    def __init__(self, spans: Sequence[PhaseSpan]) -> None:
        self.spans = sorted(spans, key=lambda s: s.start)
        self._starts = [s.start for s in self.spans]

    def at(self, moment: datetime) -> PhaseSpan | None:
        index = bisect.bisect_right(self._starts, moment) - 1
        if index < 0 or moment >= self.spans[index].end:
            return None
        return self.spans[index]

    def cycle_end(self, cycle: int) -> datetime:
        return max(s.end for s in self.spans if s.cycle == cycle)

    def complete_cycles(self, expected_phases: Sequence[str]) -> list[int]:
        """Cycles of which every phase ran to its end (the run's last, cut-short cycle is not judged)."""
        names: dict[int, list[str]] = defaultdict(list)
        for span in self.spans:
            names[span.cycle].append(span.name)
        return sorted(c for c, seen in names.items() if list(seen) == list(expected_phases))


# --- calls ----------------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    calls: int = 0
    answered: int = 0

    @property
    def share(self) -> float | None:
        return self.answered / self.calls if self.calls else None


def calls_by_phase(calls: Iterable[tuple[datetime, bool]], timeline: Timeline) -> dict[tuple[int, str], Tally]:
    """(cycle, phase) → calls started in it and how many were answered (the call's final attempt succeeded)."""
    out: dict[tuple[int, str], Tally] = defaultdict(Tally)
    for started, answered in calls:
        span = timeline.at(started)
        key = (span.cycle, span.name) if span is not None else (-1, "outside")
        out[key].calls += 1
        out[key].answered += int(answered)
    return dict(out)


# --- memory ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Growth:
    """Memory at the end of warm-up, at the last sample and at its peak after warm-up (bytes)."""

    at_warm_up: int
    last: int
    peak: int

    @property
    def growth(self) -> int:
        return self.last - self.at_warm_up


def growth_after(samples: Sequence[tuple[float, int | None]], warm_up_s: float) -> Growth | None:
    """From (elapsed seconds, bytes) samples: the first sample at or after ``warm_up_s`` is the baseline."""
    after = [(t, v) for t, v in samples if t >= warm_up_s and v is not None]
    if len(after) < 2:
        return None
    values = [v for _, v in after]
    return Growth(values[0], values[-1], max(values))


# --- notifications --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeAlert:
    """One alert inside a delivered message, from the message's JSON."""

    rule_id: str
    labels: Mapping[str, str]
    state: str
    summary: str
    value: float | None
    threshold: float | None
    episode_id: int


@dataclass(frozen=True, slots=True)
class Notice:
    """One message as delivered to one channel (an outbox row the sink received)."""

    channel: str
    transition: str
    created_at: datetime
    title: str
    alerts: tuple[NoticeAlert, ...]


@dataclass
class IncidentCount:
    """Per (cycle, phase, expected alert, channel): firing and resolved notifications that named it."""

    firing: int = 0
    resolved: int = 0
    late: int = 0  # resolved after the end of the incident's window


@dataclass
class AlertVerdict:
    """Problems by kind, each listed once with the channels it concerns, and the counts behind them."""

    missing_or_extra: dict[str, list[str]] = field(default_factory=dict)  # an expected alert not exactly once
    unexpected: dict[str, list[str]] = field(default_factory=dict)  # an alert that no incident lists
    in_calm: dict[str, list[str]] = field(default_factory=dict)  # anything sent in a calm phase
    counts: dict[tuple[int, str, int, str], IncidentCount] = field(default_factory=dict)
    optional: set[tuple[int, str, int]] = field(default_factory=set)  # (cycle, phase, expectation) may be absent
    per_rule: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (rule, channel, transition)

    @staticmethod
    def lines(found: Mapping[str, list[str]]) -> list[str]:
        return [f"{text} [{', '.join(sorted(set(channels)))}]" for text, channels in found.items()]


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _when(moment: datetime, timeline: Timeline) -> str:
    span = timeline.at(moment)
    where = f"{span.name} of cycle {span.cycle + 1}" if span is not None else "outside the run"
    return f"{moment:%H:%M:%S} ({where})"


def judge_notices(
    notices: Sequence[Notice],
    episode_starts: Mapping[int, datetime],
    timeline: Timeline,
    expected: Mapping[str, Sequence[ExpectedAlert]],
    channels: Sequence[str],
    cycles: Sequence[int],
) -> AlertVerdict:
    """Check every notice against the incidents of the complete ``cycles`` (see the module's docstring)."""
    verdict = AlertVerdict()
    judged = set(cycles)
    for notice in notices:
        span = timeline.at(notice.created_at)
        for alert in notice.alerts:
            verdict.per_rule[(alert.rule_id, notice.channel, notice.transition)] += 1
        if span is None or span.name in QUIET_PHASES:
            names = ", ".join(sorted({a.rule_id for a in notice.alerts}))
            text = f"{notice.transition} message sent during calm at {_when(notice.created_at, timeline)}: {names}"
            verdict.in_calm.setdefault(text, []).append(notice.channel)
        named: set[tuple[int, str, int, str]] = set()
        for alert in notice.alerts:
            started = episode_starts.get(alert.episode_id)
            origin = timeline.at(started) if started is not None else None
            sent = f"{notice.transition} at {_when(notice.created_at, timeline)}"
            if origin is None or not expected.get(origin.name):
                where = "an unknown time" if started is None else _when(started, timeline)
                text = f"{alert.rule_id} ({_labels(alert.labels)}) began at {where}, when no alert is expected: {sent}"
                verdict.unexpected.setdefault(text, []).append(notice.channel)
                continue
            if origin.cycle not in judged:
                continue
            matches = [i for i, e in enumerate(expected[origin.name]) if e.matches(alert.rule_id, alert.labels)]
            if not matches:
                text = (
                    f"{alert.rule_id} ({_labels(alert.labels)}) is not expected in {origin.name} of cycle "
                    f"{origin.cycle + 1}: {sent}"
                )
                verdict.unexpected.setdefault(text, []).append(notice.channel)
                continue
            kind = "resolved" if alert.state == "resolved" else "firing"
            for index in matches:
                if (origin.cycle, origin.name, index, kind) in named:
                    continue  # a grouped message counts once per rule it names
                named.add((origin.cycle, origin.name, index, kind))
                count = verdict.counts.setdefault((origin.cycle, origin.name, index, notice.channel), IncidentCount())
                if kind == "firing":
                    count.firing += 1
                else:
                    count.resolved += 1
                    if notice.created_at >= timeline.cycle_end(origin.cycle):
                        count.late += 1
    for cycle in cycles:
        for span in (s for s in timeline.spans if s.cycle == cycle):
            for index, wanted in enumerate(expected.get(span.name, ())):
                optional = span.seconds < wanted.needs_s
                if optional:
                    verdict.optional.add((cycle, span.name, index))
                for channel in channels:
                    count = verdict.counts.setdefault((cycle, span.name, index, channel), IncidentCount())
                    ok = (count.firing, count.resolved) == (1, 1) and not count.late
                    if optional and (count.firing, count.resolved) == (0, 0):
                        ok = True
                    if not ok:
                        late = f", {count.late} after the end of its recovery" if count.late else ""
                        text = (
                            f"{wanted.rule_id} ({_labels(wanted.labels)}) in {span.name} of cycle {cycle + 1}: "
                            f"{count.firing} firing and {count.resolved} resolved{late} (expected 1 and 1"
                            + (", or none: the phase is shorter than the rule needs)" if optional else ")")
                        )
                        verdict.missing_or_extra.setdefault(text, []).append(channel)
    return verdict


# --- what a message says -------------------------------------------------------------------------------------------

_NUMBER = r"(-?\d[\d ]*(?:\.\d+)?)"
COMPARISON = re.compile(_NUMBER + r"\s*(?:%|ms|s|×|USD)?\s*(<=|>=|<|>|≤|≥)\s*" + _NUMBER)
_OPS = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "≤": lambda a, b: a <= b,
    "≥": lambda a, b: a >= b,
}
_BREACHED = {"below": lambda v, t: v < t, "above": lambda v, t: v > t, "at_least": lambda v, t: v >= t}


def false_statements(alert: NoticeAlert, compare: str | None, breached_statuses: Sequence[str] = ()) -> list[str]:
    """What an alert's text says that its own numbers contradict: a comparison in the text that is false
    (``95.9 % < 95 %``); a resolved alert whose value still crosses its threshold the way the rule fires
    (``compare``: below / above / at_least); a resolved state alert whose text still names a breaching status."""
    found = []
    for match in COMPARISON.finditer(alert.summary):
        left, op, right = float(match.group(1).replace(" ", "")), match.group(2), float(match.group(3).replace(" ", ""))
        if not _OPS[op](left, right):
            found.append(f"says {match.group(0).strip()!r}, which is false")
    if alert.state == "resolved":
        check = _BREACHED.get(compare or "")
        value, threshold = alert.value, alert.threshold
        if check is not None and value is not None and threshold is not None and check(value, threshold):
            found.append(f"resolved at value {value:g}, which still crosses its threshold {threshold:g}")
        for status in breached_statuses:
            if re.search(rf"\bis {re.escape(status)}\b", alert.summary):
                found.append(f"resolved while its text says the key is {status}")
    return found
