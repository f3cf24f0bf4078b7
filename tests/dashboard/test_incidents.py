"""The incident lane's model: episodes and breaker openings as merged, capped bars on a few lanes."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from pulsegate.dashboard import incidents
from pulsegate.dashboard.incidents import Incidents
from tests.queries.data import NOW

START = NOW - timedelta(hours=1)


def ts(minutes_before_now: float) -> pd.Timestamp:
    return pd.Timestamp(NOW - timedelta(minutes=minutes_before_now))


def episodes(*rows: tuple) -> pd.DataFrame:
    """(rule, provider, fired minutes ago or None, pending minutes ago, resolved minutes ago or None[, severity])"""
    frame = pd.DataFrame(
        [
            {
                "rule_id": rule,
                "labels": {"provider": provider} if provider else {},
                "severity": extra[0] if extra else "warning",
                "pending_since": ts(pending),
                "fired_at": ts(fired) if fired is not None else pd.NaT,
                "resolved_at": ts(resolved) if resolved is not None else pd.NaT,
            }
            for rule, provider, fired, pending, resolved, *extra in rows
        ]
    )
    return frame.astype({name: "datetime64[ns, UTC]" for name in ("pending_since", "fired_at", "resolved_at")})


def breakers(*rows: tuple[str, float, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"provider": p, "start": ts(a), "end": ts(b), "instances": 1} for p, a, b in rows],
        columns=["provider", "start", "end", "instances"],
    )


def spans(found: Incidents) -> list[tuple]:
    return [(b.lane, b.start, b.end, b.kind, b.count, b.ongoing) for b in found.bars]


def test_overlapping_episodes_of_a_lane_merge_into_one_bar_and_breakers_lead() -> None:
    found = Incidents.build(
        episodes(
            ("success_rate_low", "anthropic", 50, 51, 45),
            ("success_rate_low", "anthropic", 47, 48, 42),  # overlaps the one above
            ("success_rate_low", "anthropic", 20, 21, 15),
            ("fallback_rate_high", None, 30, 31, None),  # still firing
        ),
        breakers(("openai", 40, 38)),
        START,
        NOW,
    )
    assert found.lanes == ("openai breaker open", "fallback_rate_high", "success_rate_low · anthropic")
    assert spans(found) == [
        ("fallback_rate_high", ts(30), ts(0), "firing", 1, True),
        ("openai breaker open", ts(40), ts(38), "breaker", 1, False),
        ("success_rate_low · anthropic", ts(50), ts(42), "firing", 2, False),
        ("success_rate_low · anthropic", ts(20), ts(15), "firing", 1, False),
    ]
    assert found.shades == ((ts(40), ts(38)),)  # only breaker openings shade the panels
    assert (found.total, found.hidden) == (5, 0)
    assert found.note == "5 in range"
    merged = next(b for b in found.bars if b.count == 2)
    assert merged.hover() == (
        "<b>success_rate_low · anthropic</b><br>2 alert episodes<br>from 11:10:00 UTC, until 11:18:00"
    )
    assert "still going on" in found.bars[0].hover()


def test_episodes_are_clipped_to_the_range_and_those_outside_it_left_out() -> None:
    found = Incidents.build(
        episodes(
            ("old", None, 90, 91, 70),  # resolved before the range
            ("long", None, 90, 91, None),  # firing since before the range
            ("pending_only", None, None, 10, 5),  # never fired
            ("other_provider", "openai", 30, 31, 25),
        ),
        None,
        START,
        NOW,
        provider="anthropic",
    )
    assert spans(found) == [
        ("long", ts(60), ts(0), "firing", 1, True),
        ("pending_only", ts(10), ts(5), "pending", 1, False),
    ]
    assert found.total == 2


def test_bars_beyond_the_cap_are_counted_as_more_newest_kept() -> None:
    lanes, per_lane = incidents.MAX_LANES, 25  # 200 bars: 2.4 minutes apart, far more than the merge gap (18 s)
    rows = [
        (f"rule_{lane}", None, i * 2.4 + 0.5, i * 2.4 + 0.5, i * 2.4) for lane in range(lanes) for i in range(per_lane)
    ]
    found = Incidents.build(episodes(*rows), None, START, NOW, unread=7)
    assert len(found.bars) == incidents.MAX_BARS
    assert found.hidden == lanes * per_lane - incidents.MAX_BARS + 7
    assert found.total == lanes * per_lane + 7
    assert found.note == "150 shown · +57 more (older)"
    oldest_kept = min(b.start for b in found.bars)
    assert oldest_kept == ts(18 * 2.4 + 0.5)  # 150 newest = 18 per lane and 6 of 8 lanes' 19th: nothing older kept
    assert sum(b.start == oldest_kept for b in found.bars) == 6


def test_lanes_beyond_the_cap_share_one_other_lane() -> None:
    rows = [(f"rule_{i}", None, 50 - i, 51 - i, 40 - i, "critical" if i < 3 else "info") for i in range(12)]
    found = Incidents.build(episodes(*rows), None, START, NOW)
    assert len(found.lanes) == incidents.MAX_LANES
    assert found.lanes[:3] == ("rule_2", "rule_1", "rule_0")  # critical first, most recent first
    assert found.lanes[-1] == incidents.OTHER_LANE
    [other] = [b for b in found.bars if b.lane == incidents.OTHER_LANE]  # overlapping: merged into one bar
    assert other.count == 12 - (incidents.MAX_LANES - 1)
    assert found.lanes[3:7] == ("rule_11", "rule_10", "rule_9", "rule_8")  # then the most recently active
    assert "5 alert episodes (rule_3, rule_4, rule_5, rule_6, rule_7)" in other.hover()


def test_an_instant_episode_still_gets_a_visible_bar_and_no_incident_says_so() -> None:
    found = Incidents.build(episodes(("blip", None, 30, 30, 30)), None, START, NOW)
    [bar] = found.bars
    assert bar.end - bar.start == timedelta(hours=1) * incidents.MIN_WIDTH_FRACTION
    empty = Incidents.build(None, None, START, NOW)
    assert (empty.lanes, empty.bars, empty.note) == ((), (), "none in this range")
