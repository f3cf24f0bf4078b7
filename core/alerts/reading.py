"""A reading — one label set's value for one rule, with the texts that state it truly in each state — and the
shared ways kinds make one (:func:`compared_reading`), say where it is (:func:`scope_text`) and say it is gone
(:func:`gone`). Pure: the state machine (:mod:`pulsegate.core.alerts.transitions`) uses these without touching the
store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulsegate.core.alerts.rule_fields import CLEAR_OPERATOR, FIRING_OPERATOR, RuleFields, crosses, format_duration
from pulsegate.core.alerts.wording import Quantity, back_to, bound_text, compared


@dataclass(frozen=True, slots=True)
class Reading:
    """One label set's value for one rule.

    ``breached``: the value crosses the threshold (an alert opens / fires). ``holding``: it has not got back past
    the resolve threshold (a firing alert stays firing); None means the same as ``breached``. ``enough`` is False
    when the window holds fewer calls than ``min_sample``: the alert keeps its state. ``summary`` is true on its
    own — the firing form while breached, the resolved form ("back to …") otherwise; ``holding_summary`` is what a
    firing alert says between the two thresholds."""

    labels: dict[str, str]
    value: float | None
    breached: bool
    summary: str
    threshold: float | None = None
    enough: bool = True
    details: dict[str, Any] = field(default_factory=dict)
    holding: bool | None = None
    holding_summary: str = ""
    resolve_threshold: float | None = None

    @property
    def keeps_firing(self) -> bool:
        return self.breached if self.holding is None else self.holding

    def summary_for(self, firing: bool) -> str:
        """The text of an episode in this state: a firing one not breached but still holding says so."""
        if firing and not self.breached and self.keeps_firing and self.holding_summary:
            return self.holding_summary
        return self.summary


def compared_reading(
    rule: RuleFields,
    labels: dict[str, str],
    value: float | None,
    *,
    subject: str,
    quantity: Quantity,
    tail: str = "",
    calls: float | None = None,
    threshold: float | None = None,
    missing: str = "n/a",
    details: dict[str, Any] | None = None,
) -> Reading:
    """A reading of a threshold kind, with its texts: ``{subject} 80.0 % < 95 %{tail}`` while breached,
    ``{subject} back to 97.2 % (≥ 97 %){tail}`` when clear, ``{subject} 96.0 %{tail}; fires < 95 %, resolves
    ≥ 97 %`` in between. ``calls`` below ``min_sample`` (or no value) is not enough evidence either way."""
    compare = rule.spec.compare
    bound = rule.threshold if threshold is None else threshold
    resolve = bound if rule.resolve_threshold is None else rule.resolve_threshold
    info = dict(details or {})
    if calls is not None:
        info.setdefault("calls", calls)
    if value is None or bound is None or (calls is not None and calls < rule.min_sample):
        shown = missing if value is None else quantity.text(value)
        text = f"{subject} {shown}{tail}"
        if value is not None and calls is not None:
            text += f"; fewer than {rule.min_sample} calls: not judged"
        return Reading(labels, value, False, text, bound, False, info, False, text, resolve)
    breached = crosses(compare, value, bound)
    holding = crosses(compare, value, resolve)
    if breached:
        summary = f"{subject} {compared(value, FIRING_OPERATOR[compare], bound, quantity)}{tail}"
    else:
        summary = f"{subject} {back_to(value, CLEAR_OPERATOR[compare], resolve, quantity)}{tail}"
    fires, resolves = (
        bound_text(FIRING_OPERATOR[compare], bound, quantity),
        bound_text(CLEAR_OPERATOR[compare], resolve, quantity),
    )
    between = f"{subject} {quantity.text(value)}{tail}; fires {fires}, resolves {resolves}"
    return Reading(labels, value, breached, summary, bound, True, info, holding, between, resolve)


def gone(rule: RuleFields, labels: dict[str, str]) -> tuple[str, float | None]:
    """(text, value) of an alert whose label set has nothing left to measure: a spend is back to 0, a rate has no
    calls to be measured over (value unknown: None), a state is no longer reported (None)."""
    scope = scope_text(labels)
    resolve = rule.resolve_bound
    total = rule.spec.total  # a sum: no calls means 0
    if total is not None and resolve is not None:
        stated = back_to(0.0, CLEAR_OPERATOR[rule.spec.compare], resolve, total)
        if rule.kind == "key_monthly_spend":
            return f"{scope} month-to-date spend {stated}: nothing spent this month yet", 0.0
        return f"{scope} spend {stated}: no calls in the last {format_duration(rule.window_s)}", 0.0
    if rule.spec.windowed:
        return f"{scope}: no calls in the last {format_duration(rule.window_s)}", None
    return f"{scope}: no longer reported", None


def scope_text(labels: dict[str, str]) -> str:
    """``anthropic``, ``anthropic key 'Primary'``, ``openai model gpt-4.1`` or ``all providers``."""
    if not labels.get("provider"):
        return "all providers"
    text = labels["provider"]
    if labels.get("key_label"):
        text += f" key {labels['key_label']!r}"
    if labels.get("model"):
        text += f" model {labels['model']}"
    return text
