"""Reading one ``[[rules]]`` entry of the rules file into a :class:`~pulsegate.core.alerts.rules.Rule` — with every
problem of the entry reported at once, each naming the field, and a "did you mean" for a misspelt rule id, kind or
field.

A default's ``id`` overrides the fields the entry gives; a new ``id`` needs a ``kind``. :func:`check_rule` runs the
cross-field checks (a resolve threshold on the firing side of the threshold, a percentage above 100 …) on any rule,
the shipped defaults included.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from typing import Any

from pulsegate.core.alerts.kinds import KINDS
from pulsegate.core.alerts.model import SEVERITIES
from pulsegate.core.alerts.rule_fields import CLEAR_OPERATOR, FIRING_OPERATOR, SCOPES, SOURCES, parse_duration
from pulsegate.core.alerts.rules import ID_PATTERN, Rule
from pulsegate.core.errors import ErrorClass, PulsegateError
from pulsegate.core.store.snapshot_rollups import KEY_STATUS_RANK
from pulsegate.core.store.tables import PROVIDERS

#: TOML field → Rule attribute (durations are converted); the rest map by name.
_RENAMED = {
    "window": "window_s",
    "for": "for_s",
    "short_window": "short_window_s",
    "baseline": "baseline_s",
    "keep_firing_for": "keep_firing_for_s",
    "inhibits": "inhibit",
}
_DURATIONS = frozenset({"window", "for", "short_window", "baseline", "keep_firing_for"})
COMMON_FIELDS = frozenset(
    {
        "id",
        "kind",
        "threshold",
        "window",
        "for",
        "min_sample",
        "severity",
        "scope",
        "provider",
        "key_label",
        "source",
        "labels",
        "title",
        "enabled",
        "keep_firing_for",
        "inhibits",
    }
)
#: Only kinds with a threshold have a resolve threshold.
THRESHOLD_FIELDS = frozenset({"resolve_threshold"})
ALL_FIELDS = COMMON_FIELDS | THRESHOLD_FIELDS | frozenset().union(*(kind.spec.extra for kind in KINDS.values()))
_RULE_ATTRS = frozenset(f.name for f in fields(Rule))


class RuleProblem(PulsegateError, ValueError):
    """One problem in one rule: ``field`` names the TOML field."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}")
        self.field = field_name
        self.problem = problem


class RuleProblems(PulsegateError, ValueError):
    """Every problem found in one rule (at least one)."""

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``''`` when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def fields_for(kind: str) -> frozenset[str]:
    """The TOML fields a rule of ``kind`` accepts."""
    spec = KINDS[kind].spec
    return COMMON_FIELDS | spec.extra | (THRESHOLD_FIELDS if spec.compare != "state" else frozenset())


# --- one field ----------------------------------------------------------------------------------------------------


def _number(name: str, value: object, *, above: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleProblem(name, f"expected a number, got {value!r}")
    if above is not None and value <= above:
        raise RuleProblem(name, f"expected a number > {above:g}, got {value!r}")
    return float(value)


def _string(name: str, value: object, allowed: tuple[str, ...] | None = None, max_length: int = 64) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RuleProblem(name, f"expected a non-empty string, got {value!r}")
    if allowed is not None and value not in allowed:
        raise RuleProblem(name, f"expected one of {', '.join(allowed)}, got {value!r}{did_you_mean(value, allowed)}")
    if len(value) > max_length:
        raise RuleProblem(name, f"at most {max_length} characters, got {len(value)}")
    return value


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise RuleProblem(name, f"expected true or false, got {value!r}")
    return value


def convert(name: str, value: object) -> tuple[str, Any]:
    """One TOML field → (Rule attribute, checked value); :class:`RuleProblem` if the value is wrong."""
    attr = _RENAMED.get(name, name)
    if name in _DURATIONS:
        try:
            return attr, parse_duration(value)
        except ValueError as exc:
            raise RuleProblem(name, str(exc)) from None
    if name in ("threshold", "resolve_threshold", "objective", "cap_usd"):
        return attr, _number(name, value)
    if name == "min_sample":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RuleProblem(name, f"expected a whole number ≥ 0, got {value!r}")
        return attr, value
    choices = {"severity": SEVERITIES, "scope": SCOPES, "source": SOURCES, "provider": PROVIDERS}
    if name in choices:
        return attr, _string(name, value, tuple(choices[name]))
    if name in ("key_label", "title"):
        return attr, _string(name, value, max_length=64 if name == "key_label" else 120)
    if name in ("enabled", "enforce", "inhibits"):
        return attr, _bool(name, value)
    if name == "error_class":
        return attr, _string(name, value, tuple(e.value for e in ErrorClass))
    if name == "instance_kind":
        return attr, _string(name, value, ("worker", "client"))
    if name == "statuses":
        if not isinstance(value, list) or not value:
            raise RuleProblem(name, f"expected a non-empty list of key statuses, got {value!r}")
        return attr, tuple(_string(name, v, tuple(KEY_STATUS_RANK)) for v in value)
    if name == "labels":
        return attr, _labels(value)
    if name == "key_caps":
        if not isinstance(value, Mapping) or not value:
            raise RuleProblem(name, "expected a table of key label → USD, e.g. { Primary = 50.0 }")
        return attr, {str(k): _number(f"{name}.{k}", v, above=0) for k, v in value.items()}
    raise RuleProblem(name, f"unknown field{did_you_mean(name, ALL_FIELDS)}")


def _labels(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k and len(k) <= 64 and len(v) <= 128 for k, v in value.items()
    ):
        raise RuleProblem("labels", 'expected a table of short strings, e.g. { team = "platform" }')
    reserved = sorted(set(value) & {"rule_id", "provider", "key_label", "model", "channel", "instance_kind"})
    if reserved:
        raise RuleProblem("labels", f"{', '.join(reserved)} is set by the rule's scope; choose another label name")
    return dict(value)


# --- one entry ----------------------------------------------------------------------------------------------------


def _base_rule(entry: Mapping[str, Any], defaults: Mapping[str, Rule], problems: list[RuleProblem]) -> Rule | None:
    """The rule the entry starts from (a default, or a new rule of its kind); None when there is none to check
    the other fields against (the problems say why)."""
    if "id" not in entry:
        problems.append(RuleProblem("id", "is required (a default's id to change it, or a new one with a kind)"))
        return None
    try:
        rule_id = _string("id", entry["id"])
    except RuleProblem as exc:
        problems.append(exc)
        return None
    if not ID_PATTERN.match(rule_id):
        problems.append(RuleProblem("id", f"use lower-case letters, digits, '_', '-' and '.', got {rule_id!r}"))
        return None
    base = defaults.get(rule_id)
    if base is not None:
        if "kind" in entry and entry["kind"] != base.kind:
            problems.append(
                RuleProblem("kind", f"cannot change a default rule's kind ({base.kind}); give the new rule another id")
            )
            return None
        return base
    if "kind" not in entry:
        suggestion = did_you_mean(rule_id, defaults)
        if suggestion:
            problems.append(RuleProblem("id", f"unknown rule id {rule_id!r}{suggestion}"))
        else:
            problems.append(RuleProblem("kind", f"is required for a new rule; one of {', '.join(KINDS)}"))
        return None
    try:
        kind = _string("kind", entry["kind"], tuple(KINDS))
    except RuleProblem as exc:
        problems.append(exc)
        return None
    scopes = KINDS[kind].spec.scopes
    return Rule(id=rule_id, kind=kind, scope="provider" if "provider" in scopes else scopes[0])


def rule_from_toml(entry: Mapping[str, Any], defaults: Mapping[str, Rule]) -> Rule:
    """A rule from one ``[[rules]]`` table; :class:`RuleProblems` with every problem of the entry."""
    problems: list[RuleProblem] = []
    base = _base_rule(entry, defaults, problems)
    allowed = fields_for(base.kind) if base is not None else ALL_FIELDS
    changes: dict[str, Any] = {}
    for name, value in entry.items():
        if name in ("id", "kind"):
            continue
        if name not in allowed:
            if name in ALL_FIELDS and base is not None:
                problems.append(RuleProblem(name, f"does not apply to kind {base.kind}"))
            else:
                problems.append(RuleProblem(name, f"unknown field{did_you_mean(name, allowed)}"))
            continue
        try:
            attr, converted = convert(name, value)
        except RuleProblem as exc:
            problems.append(exc)
            continue
        changes[attr] = converted
    if base is None:
        raise RuleProblems(problems)
    if "threshold" in changes and "resolve_threshold" not in changes:
        changes["resolve_threshold"] = None  # a resolve threshold belongs to its threshold: a new one resolves at it
    assert set(changes) <= _RULE_ATTRS
    rule = replace(base, **changes)
    named = {p.field for p in problems}  # a field already found wrong is not reported again as missing
    problems += [p for p in rule_problems(rule) if p.field not in named]
    if problems:
        raise RuleProblems(problems)
    return rule


# --- cross-field checks -------------------------------------------------------------------------------------------


def rule_problems(rule: Rule) -> list[RuleProblem]:
    """Every cross-field problem of a rule (also run on the shipped defaults)."""
    spec = rule.spec
    found: list[RuleProblem] = []

    def problem(field_name: str, text: str) -> None:
        found.append(RuleProblem(field_name, text))

    if rule.scope not in spec.scopes:
        problem("scope", f"kind {rule.kind} supports {', '.join(spec.scopes)}, got {rule.scope!r}")
    if spec.compare != "state" and rule.kind != "no_probes" and rule.threshold is None:
        problem("threshold", f"is required for kind {rule.kind} (in {spec.unit})")
    if spec.windowed and not rule.window_s:
        problem("window", f"is required for kind {rule.kind}")
    for name, value in (("threshold", rule.threshold), ("resolve_threshold", rule.resolve_threshold)):
        if value is None:
            continue
        if spec.unit == "%" and not 0 <= value <= 100:  # a share of calls (a cap's "% of cap" can pass 100)
            problem(name, f"is a percentage 0–100, got {value:g}")
        elif value < 0:
            problem(name, f"expected a number ≥ 0, got {value:g}")
    found += _hysteresis_problems(rule)
    if rule.kind == "error_class_share_above" and rule.error_class is None:
        problem("error_class", "is required for kind error_class_share_above")
    if rule.kind == "slo_burn_rate":
        if rule.objective is None or not 0 < rule.objective < 100:
            problem("objective", "is required: the success objective in percent, e.g. 99.9")
        if rule.short_window_s is not None and rule.window_s and rule.short_window_s >= rule.window_s:
            problem("short_window", "must be shorter than window")
    if rule.kind == "key_monthly_spend" and rule.cap_usd is None and not rule.key_caps:
        problem("cap_usd", "is required (or key_caps): the monthly cap per key in USD")
    if rule.cap_usd is not None and rule.cap_usd <= 0:
        problem("cap_usd", f"expected a number > 0, got {rule.cap_usd:g}")
    if rule.inhibit and rule.scope != "provider":
        problem("inhibits", f"only a provider-scope rule can inhibit per-key alerts (scope is {rule.scope})")
    return found


def _hysteresis_problems(rule: Rule) -> list[RuleProblem]:
    """A resolve threshold must lie on the good side of the threshold (or equal it), and be reachable."""
    resolve, threshold, compare = rule.resolve_threshold, rule.threshold, rule.spec.compare
    if resolve is None or compare == "state":
        return []
    if threshold is None:
        return [RuleProblem("resolve_threshold", "needs an explicit threshold to lie beside")]
    wrong_side = resolve < threshold if compare == "below" else resolve > threshold
    if wrong_side:
        side = "at or above" if compare == "below" else "at or below"
        fires = f"it fires when the value is {FIRING_OPERATOR[compare]} {threshold:g}"
        return [
            RuleProblem(
                "resolve_threshold",
                f"must be {side} the threshold ({threshold:g}), got {resolve:g}: {fires} and resolves when it is "
                f"back {CLEAR_OPERATOR[compare]} the resolve threshold",
            )
        ]
    if compare == "at_least" and resolve <= 0:
        return [RuleProblem("resolve_threshold", f"must be above 0 (nothing is < {resolve:g}), got {resolve:g}")]
    return []


def check_rule(rule: Rule) -> None:
    """:class:`RuleProblems` if the rule has any cross-field problem."""
    problems = rule_problems(rule)
    if problems:
        raise RuleProblems(problems)
