"""Unit tests of the pure parts: header formats, token buckets, answers, latency sampling, the manual clock."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulsegate.emulator import ManualClock
from pulsegate.emulator.app import sample_latency
from pulsegate.emulator.budget import KeyBudget, TokenBucket
from pulsegate.emulator.formats import go_duration, retry_after_seconds, rfc3339
from pulsegate.emulator.scenario import KeyPolicy, Latency, ReplyConfig
from pulsegate.emulator.stats import fingerprint
from pulsegate.emulator.textgen import answer, pieces, sample_value


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (-1, "0s"),
        (0.012, "12ms"),
        (0.0001, "1ms"),
        (0.999, "999ms"),
        (1.0, "1s"),
        (1.4, "1.4s"),
        (17.798, "17.798s"),
        (59.9999, "1m0s"),
        (360, "6m0s"),
        (90.5, "1m30.5s"),
        (3723, "1h2m3s"),
        (3600, "1h0m0s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_rfc3339_rounds_up() -> None:
    assert rfc3339(1795863481.0) == "2026-11-28T10:58:01Z"
    assert rfc3339(1795863480.2) == "2026-11-28T10:58:01Z"


def test_retry_after_is_a_ceiling_of_at_least_one() -> None:
    assert [retry_after_seconds(w) for w in (0.0, 0.01, 1.0, 1.0001, 17.2)] == [1, 1, 1, 2, 18]


def test_fingerprint_matches_the_project_rule() -> None:
    assert fingerprint("abc") == "ba7816bf8f01"
    assert fingerprint(None) == "-"


def test_bucket_refills_continuously() -> None:
    bucket = TokenBucket(10, period=10.0, now=0.0)
    bucket.take(10)
    assert bucket.remaining == 0 and bucket.seconds_to_full() == pytest.approx(10.0)
    bucket.refill(2.5)
    assert bucket.remaining == 2 and bucket.wait_for(5) == pytest.approx(2.5)
    bucket.refill(100.0)
    assert bucket.remaining == 10  # capped at capacity


def test_key_budget_admit_deny_and_give_back() -> None:
    budget = KeyBudget(KeyPolicy(requests=2, tokens=100, period=10.0), now=0.0)
    assert budget.admit(0.0, input_tokens=10, max_output=50) is None
    budget.give_back(40)  # generated 10 of the 50
    windows = budget.windows(0.0)
    assert (windows["requests"].remaining, windows["tokens"].remaining) == (1, 80)
    assert windows["input_tokens"] == windows["tokens"]
    denial = budget.admit(0.0, input_tokens=10, max_output=80)
    assert denial is not None and denial.bucket == "tokens" and denial.wait == pytest.approx(1.0)
    assert budget.admit(0.0, 10, 10) is None
    denial = budget.admit(0.0, 1, 1)
    assert denial is not None and denial.bucket == "requests" and denial.wait == pytest.approx(5.0)
    too_big = budget.admit(0.0, 10, 500)
    assert too_big is not None and too_big.too_large


@given(st.text(max_size=200))
def test_pieces_rebuild_the_text(text: str) -> None:
    assert "".join(pieces(text)) == text.rstrip()


@given(st.text(min_size=0, max_size=80), st.integers(min_value=1, max_value=40))
def test_answer_respects_max_tokens(prompt: str, max_tokens: int) -> None:
    ans = answer(prompt, ReplyConfig(), max_tokens, ())
    assert 1 <= ans.output_tokens <= max_tokens
    assert ans.stop in ("end", "max_tokens")
    assert (ans.stop == "max_tokens") == (len(pieces(answer(prompt, ReplyConfig(), None, ()).text)) > max_tokens)


def test_sample_value_prefers_default_example_enum() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "default": "d"},
            "b": {"type": "string", "examples": ["e"]},
            "c": {"enum": ["x", "y"]},
            "d": {"type": ["null", "integer"]},
            "e": {"type": "array", "items": {"type": "boolean"}},
        },
    }
    assert sample_value(schema) == {"a": "d", "b": "e", "c": "x", "d": 1, "e": [True]}


def test_latency_distributions() -> None:
    rng = random.Random(1)
    assert sample_latency(Latency(), rng) == 0.0
    assert sample_latency(Latency(kind="fixed", ms=25), rng) == 0.025
    uniform = [sample_latency(Latency(kind="uniform", min_ms=10, max_ms=20), rng) for _ in range(500)]
    assert min(uniform) >= 0.010 and max(uniform) <= 0.020
    logn = [sample_latency(Latency(kind="lognormal", median_ms=50, sigma=0.5), rng) for _ in range(2000)]
    assert statistics.median(logn) == pytest.approx(0.050, rel=0.1)
    capped = [sample_latency(Latency(kind="lognormal", median_ms=50, sigma=2, max_ms=60), rng) for _ in range(500)]
    assert max(capped) <= 0.060


def test_manual_clock() -> None:
    clock = ManualClock(start=5.0, wall_start=1000.0)
    assert (clock.now(), clock.wall()) == (5.0, 1000.0)
    clock.advance(2.5)
    assert (clock.now(), clock.wall()) == (7.5, 1002.5)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
