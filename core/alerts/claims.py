"""Reading back the comparisons an alert text states, to check that none contradicts its own numbers.

Alert texts state a comparison in one of two forms (:mod:`pulsegate.core.alerts.wording` writes them):

* firing — ``anthropic success rate 80.0 % < 95 % over 5m``: value, operator, bound;
* resolved — ``anthropic success rate back to 96.1 % (≥ 95 %) over 5m``: ``back to`` value, (operator bound).

:func:`false_claims` finds every comparison in a text and returns the ones that do not hold; a resolved message
must state no firing-form comparison at all (:func:`resolved_text_problems`). Texts are taken as a receiver shows
them: Slack's ``&lt;`` / ``&gt;`` are read as ``<`` / ``>``. The tests and the soak run check every alert text
they see with these functions.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulsegate.core.alerts.wording import holds

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"
_UNIT = r"(?:\s?%|\sms|\ss|×)?"
_OPERATOR = r"[<>≤≥]"
_RESOLVED = re.compile(rf"back to (?P<value>{_NUMBER}){_UNIT} \((?P<op>{_OPERATOR}) (?P<bound>{_NUMBER}){_UNIT}\)")
_FIRING = re.compile(rf"(?<![\w.,$])(?P<value>{_NUMBER}){_UNIT} (?P<op>{_OPERATOR}) (?P<bound>{_NUMBER}){_UNIT}")


@dataclass(frozen=True, slots=True)
class Claim:
    """One comparison stated in a text."""

    form: str  # "firing" | "resolved"
    text: str
    value: float
    operator: str
    bound: float
    value_decimals: int

    @property
    def true(self) -> bool:
        return holds(self.value, self.operator, self.bound)


def _number(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def claims(text: str) -> list[Claim]:
    """Every comparison ``text`` states, in order."""
    plain = html.unescape(text)
    found = []
    for form, pattern in (("resolved", _RESOLVED), ("firing", _FIRING)):
        for match in pattern.finditer(plain):
            found.append(
                (
                    match.start(),
                    Claim(
                        form,
                        match.group(0),
                        _number(match["value"]),
                        match["op"],
                        _number(match["bound"]),
                        _decimals(match["value"]),
                    ),
                )
            )
    return [claim for _, claim in sorted(found, key=lambda item: item[0])]


def false_claims(text: str) -> list[str]:
    """The comparisons in ``text`` that do not hold, each as ``'95.9 % < 95 %' is false``."""
    return [f"{claim.text!r} is false" for claim in claims(text) if not claim.true]


def resolved_text_problems(text: str) -> list[str]:
    """What is wrong with a resolved alert's text: a comparison that does not hold, or a firing-form comparison
    (a resolved message says what the value is back to, never that it crosses the threshold)."""
    problems = false_claims(text)
    problems += [f"{c.text!r} is stated as still firing" for c in claims(text) if c.form == "firing"]
    return problems


def resolved_alert_problems(alert: Mapping[str, Any]) -> list[str]:
    """:func:`resolved_text_problems` of a message's resolved alert (``AlertView.to_json()``), plus: the value its
    text states is the alert's ``value`` as rounded, and the bound is its ``resolve_threshold`` or ``threshold``."""
    summary = str(alert.get("summary") or "")
    problems = resolved_text_problems(summary)
    value = alert.get("value")
    bounds = {b for b in (alert.get("resolve_threshold"), alert.get("threshold")) if b is not None}
    for claim in claims(summary):
        if claim.form != "resolved":
            continue
        if value is not None and abs(claim.value - float(value)) >= 10**-claim.value_decimals + 1e-9:
            problems.append(f"{claim.text!r} states {claim.value:g}, the alert's value is {value}")
        if bounds and not any(abs(claim.bound - float(b)) < 1e-9 for b in bounds):
            problems.append(f"{claim.text!r} states bound {claim.bound:g}, the alert's are {sorted(bounds)}")
    return problems
