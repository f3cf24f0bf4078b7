"""Two evaluators on one store (two workers, each with its own connection pool) racing at the same instants:
one episode per fingerprint, one outbox row per transition and channel — never two."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.evaluator import AlertEvaluator, EvaluationReport
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.clock import ManualClock
from pulsegate.core.store.engine import create_store_engine
from tests.alerts.support import (
    OPS,
    PAGER,
    START,
    Calls,
    beat,
    config,
    episodes,
    key_state,
    outbox,
    provider_state,
)


@pytest.fixture
def clock() -> ManualClock:
    """Time starts at :data:`START` (mid-month, on a half minute) in the alert tests."""
    return ManualClock(START)


RULES = (
    Rule(id="key_unhealthy", kind="key_unhealthy", scope="key", severity="critical"),
    Rule(id="success_rate_low", kind="success_rate_below", threshold=95, window_s=300, for_s=60, min_sample=10),
    Rule(id="provider_keys_unavailable", kind="provider_all_keys_unavailable", for_s=30, severity="critical"),
)
LABELS = [f"Key {i}" for i in range(8)]


def _race(engines: list[AlertEvaluator], clock: ManualClock, rounds: int = 3) -> list[EvaluationReport]:
    """Every engine evaluates at the same instant, released together by a barrier, ``rounds`` times."""
    reports: list[EvaluationReport] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    for _ in range(rounds):
        barrier = threading.Barrier(len(engines))
        now = clock.now()

        def work(engine: AlertEvaluator, barrier: threading.Barrier = barrier, now: datetime = now) -> None:
            try:
                barrier.wait()
                report = engine.evaluate(now)
            except BaseException as exc:  # surfaced below
                errors.append(exc)
                return
            with lock:
                reports.append(report)

        threads = [threading.Thread(target=work, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
    return reports


def test_two_evaluators_never_double_notify(store: sa.Engine, clock: ManualClock) -> None:
    other = create_store_engine(store.url.render_as_string(hide_password=False))
    try:
        cfg = config(*RULES, channels=(OPS, PAGER), group_wait_s=30, repeat_interval_s=600)
        engines = [AlertEvaluator(store, cfg, clock), AlertEvaluator(other, cfg, clock)]
        calls = Calls(store)
        reports_all: list[EvaluationReport] = []

        def world(status: str, failing: bool) -> None:
            anthropic = [key_state("Key 0"), *(key_state(label, status) for label in LABELS[1:])]
            openai = [key_state("Main", status), key_state("Spare", status)]
            beat(store, clock.now(), {"anthropic": provider_state(anthropic), "openai": provider_state(openai)})
            calls.add(clock.now(), ok=2 if failing else 20, failed=8 if failing else 0)

        for _ in range(8):  # 0 … 140 s: the keys and the provider fire, then the group waits are over
            world("unhealthy", True)
            reports_all += _race(engines, clock)
            clock.advance(20)
        for _ in range(3):  # still firing: nothing new
            world("unhealthy", True)
            reports_all += _race(engines, clock)
            clock.advance(20)
        clock.advance(600)  # past the repeat interval
        world("unhealthy", True)
        reports_all += _race(engines, clock)
        for _ in range(6):  # everything recovers (the failures leave the 5-minute window)
            clock.advance(60)
            world("healthy", False)
            reports_all += _race(engines, clock)

        rows = outbox(store)
        per = Counter((r["transition"], r["channel"], r["group_key"]) for r in rows)
        # The openai keys are inhibited by the openai provider-wide alert: never notified.
        groups = ("key_unhealthy/provider=anthropic", "provider_keys_unavailable/provider=openai")
        expected = {(t, c, g): 1 for t in ("firing", "repeat", "resolved") for c in ("ops", "pager") for g in groups}
        expected |= {(t, "ops", "success_rate_low/provider=anthropic"): 1 for t in ("firing", "repeat", "resolved")}
        assert per == expected
        # Between them the evaluators report each transition once, and as many rows as the outbox holds.
        assert sum(len(r.fired) for r in reports_all) == sum(len(r.resolved) for r in reports_all) == 11
        assert sum(r.notifications for r in reports_all) == len(rows)
        key_rows = [r for r in rows if r["group_key"].startswith("key_unhealthy") and r["channel"] == "ops"]
        assert [len(r["episode_ids"]) for r in key_rows] == [7, 7, 7]  # one message for the seven keys, each time
        # One episode per fingerprint (7 + 2 keys, 1 provider, 1 success rate), each resolved exactly once.
        seen = Counter(e["fingerprint"] for e in episodes(store))
        assert set(seen.values()) == {1} and len(seen) == 11
        assert {e["state"] for e in episodes(store)} == {"resolved"}
    finally:
        other.dispose()
