"""The kinds measured over a window of calls, from the rollup tiers
(:func:`pulsegate.core.alerts.signal_context.traffic`): success rate, p95 latency, error-class and fallback shares,
spend, month-to-date spend, token spikes, SLO burn.

Each states its value beside its bound in the shared form (:func:`~pulsegate.core.alerts.reading.compared_reading`):
``anthropic success rate 80.0 % < 95 % over 5m (20 calls)`` while breached, ``anthropic success rate back to
97.2 % (≥ 97 %) over 5m (40 calls)`` once resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pulsegate.core.alerts.reading import Reading, compared_reading, scope_text
from pulsegate.core.alerts.rule_fields import RuleFields, format_duration
from pulsegate.core.alerts.signal_context import SignalContext, traffic, window
from pulsegate.core.alerts.wording import MILLISECONDS, PERCENT, TIMES, USD, WHOLE_PERCENT
from pulsegate.core.queries import common
from pulsegate.core.store import latency_buckets


def _calls_text(calls: float) -> str:
    return f"{round(calls):,}"


def _shares(
    rule: RuleFields, ctx: SignalContext, column: str, name: str, counted: Callable[[float, float], str]
) -> list[Reading]:
    """``column`` as a percentage of the answered calls of each label set over the window (unknown with none; a
    cancelled call is neither a success nor an error), stated as ``<scope> <name>`` with ``counted(part, calls)``
    after the window: the three share kinds below."""
    out = []
    for labels, t in traffic(rule, ctx, *window(rule, ctx)):
        calls = common.answered(t)
        value = t[column] / calls * 100 if calls else None
        tail = f" over {format_duration(rule.window_s)} ({counted(t[column], calls)})"
        subject = f"{scope_text(labels)} {name}"
        out.append(compared_reading(rule, labels, value, subject=subject, quantity=PERCENT, tail=tail, calls=calls))
    return out


def success_rate_below(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    return _shares(rule, ctx, "successes", "success rate", lambda _, calls: f"{_calls_text(calls)} calls")


def p95_latency_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, t in traffic(rule, ctx, *window(rule, ctx)):
        p95 = latency_buckets.quantile([t[name] for name in latency_buckets.COLUMN_NAMES], 0.95)
        tail = f" over {format_duration(rule.window_s)}"
        subject = f"{scope_text(labels)} p95 latency"
        out.append(
            compared_reading(rule, labels, p95, subject=subject, quantity=MILLISECONDS, tail=tail, calls=t["calls"])
        )
    return out


def error_class_share_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    return _shares(
        rule,
        ctx,
        f"err_{rule.error_class}",
        f"{rule.error_class} share",
        lambda part, calls: f"{_calls_text(part)} of {_calls_text(calls)} calls",
    )


def fallback_rate_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    return _shares(
        rule,
        ctx,
        "fallbacks",
        "fallback rate",
        lambda part, calls: f"{_calls_text(part)} of {_calls_text(calls)} calls served as a fallback",
    )


def _cost(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    out = []
    for labels, t in traffic(rule, ctx, *window(rule, ctx)):
        tail = f" in the last {format_duration(rule.window_s)}"
        subject = f"{scope_text(labels)} spend"
        out.append(
            compared_reading(
                rule, labels, float(t["cost_usd"]), subject=subject, quantity=USD, tail=tail, calls=t["calls"]
            )
        )
    return out


def cost_per_hour_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    return _cost(rule, ctx)


def cost_per_day_above(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    return _cost(rule, ctx)


def month_start(now: datetime) -> datetime:
    moment = now.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def key_monthly_spend(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """Month-to-date spend per key (UTC calendar month, live and probe calls) as a percentage of its cap."""
    start = month_start(ctx.now)
    if ctx.now <= start:
        return []
    out = []
    for labels, t in traffic(rule, ctx, start, ctx.now):
        cap = rule.cap_for(labels["key_label"])
        if cap is None:
            continue
        spend = float(t["cost_usd"])
        subject = f"{scope_text(labels)} month-to-date spend"
        tail = f" of its ${cap:g} cap (${spend:.2f})"
        details = {"spend_usd": spend, "cap_usd": cap}
        value = spend / cap * 100
        out.append(
            compared_reading(rule, labels, value, subject=subject, quantity=WHOLE_PERCENT, tail=tail, details=details)
        )
    return out


def tokens_per_hour_above_baseline(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """Tokens (in + out) over the window, per hour, against the average hourly tokens of the trailing baseline."""
    start, end = window(rule, ctx)
    baseline_s = rule.baseline_s or 7 * 86400
    hours = rule.window_s / 3600 if rule.window_s else 1.0
    base_start = common.floor_time(start - timedelta(seconds=baseline_s), 3600)
    base_end = common.floor_time(start, 3600)
    base = {}
    if base_end > base_start:
        base = {tuple(labels.values()): t for labels, t in traffic(rule, ctx, base_start, base_end)}
    base_hours = max(1.0, (base_end - base_start).total_seconds() / 3600)
    out = []
    for labels, t in traffic(rule, ctx, start, end):
        tokens = float(t["input_tokens"] + t["output_tokens"]) / hours
        before = base.get(tuple(labels.values()))
        baseline = float(before["input_tokens"] + before["output_tokens"]) / base_hours if before else 0.0
        value = tokens / baseline if baseline > 0 else None
        subject = f"{scope_text(labels)} tokens per hour"
        tail = (
            f" over {format_duration(rule.window_s)} against the {format_duration(baseline_s)} baseline "
            f"({tokens:,.0f} vs {baseline:,.0f} tokens/h)"
        )
        out.append(compared_reading(rule, labels, value, subject=subject, quantity=TIMES, tail=tail, calls=t["calls"]))
    return out


def slo_burn_rate(rule: RuleFields, ctx: SignalContext) -> list[Reading]:
    """Multi-window burn rate (SRE workbook): the error ratio over the long window and over the short one, each
    divided by the error budget (1 − objective); breached when both exceed the threshold. The value is the
    smaller of the two burn rates."""
    assert rule.window_s and rule.objective is not None
    short_s = rule.short_window_s or rule.window_s / 12
    budget = 1 - rule.objective / 100
    long_rows = traffic(rule, ctx, *window(rule, ctx))
    short = {tuple(lb.values()): t for lb, t in traffic(rule, ctx, ctx.now - timedelta(seconds=short_s), ctx.now)}
    out = []
    for labels, t in long_rows:
        calls = common.answered(t)  # a cancelled call spends no error budget
        long_burn = (1 - t["successes"] / calls) / budget if calls else 0.0
        s = short.get(tuple(labels.values()))
        short_calls = common.answered(s) if s else 0
        short_burn = (1 - s["successes"] / short_calls) / budget if s and short_calls else 0.0
        subject = f"{scope_text(labels)} error budget burn rate"
        tail = (
            f" (the lower of {long_burn:.1f}× over {format_duration(rule.window_s)} and {short_burn:.1f}× over "
            f"{format_duration(short_s)}; {rule.objective:g} % objective)"
        )
        details = {"long_burn": long_burn, "short_burn": short_burn}
        value = min(long_burn, short_burn)
        out.append(
            compared_reading(
                rule, labels, value, subject=subject, quantity=TIMES, tail=tail, calls=calls, details=details
            )
        )
    return out
