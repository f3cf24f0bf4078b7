"""``pulsegate demo`` end to end, as a newcomer runs it: one real process with a shortened cycle for about a minute,
checked through the store, the worker's JSON, the sink's JSON and a real browser; then Ctrl-C (SIGINT) must stop
every child and lose no row. And the same worker + traffic + dashboard on PostgreSQL instead of SQLite."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest

from benchmarks.support.browser import BROWSER_ARGS
from tests.demo.conftest import (
    check_overview,
    get_json,
    process_groups_left,
    running_demo,
    scalar,
    store,
    wait_for,
)

pytestmark = pytest.mark.slow

LIVE_CALLS = "SELECT count(*) FROM api_usage_metrics WHERE source = 'live' AND is_final"
CALL_IDS = "SELECT count(DISTINCT call_id) FROM api_usage_metrics WHERE source = 'live'"
FALLBACKS = "SELECT count(*) FROM api_usage_metrics WHERE fell_back_from IS NOT NULL"
FIRED = "SELECT count(*) FROM alert_episodes WHERE fired_at IS NOT NULL"
ERRORS = "SELECT count(*) FROM api_usage_metrics WHERE error_class = '{}'"  # live calls or the worker's probes
KEY_ALERT_RESOLVED = "SELECT count(*) FROM alert_episodes WHERE rule_id = 'key_unhealthy' AND resolved_at IS NOT NULL"
FIRED_AND_RESOLVED = "SELECT count(*) FROM alert_episodes WHERE fired_at IS NOT NULL AND resolved_at IS NOT NULL"


def _stopped_cleanly(demo, state: dict, directory: Path, sig: int = signal.SIGINT) -> dict:  # type: ignore[no-untyped-def]
    code = demo.stop(sig, timeout=90)
    assert code == 0, demo.output[-3000:]
    assert process_groups_left(state) == []
    assert re.search(r"stopped \(traffic 0, dashboard -?\d+, worker 0, sink 0, emulator 0\)", demo.output)
    tally = json.loads((directory / "traffic.json").read_text())
    assert tally["closed"] is True  # written after aclose() flushed the recorder
    engine = store(state)
    try:
        assert scalar(engine, LIVE_CALLS) == scalar(engine, CALL_IDS) == tally["calls"] > 0  # no row lost
    finally:
        engine.dispose()
    return tally


def test_demo_shows_everything_within_a_minute_and_stops_cleanly(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with running_demo(tmp_path, cycle_s=40) as (demo, state):
        ready = time.monotonic()
        engine = store(state)
        urls = state["urls"]
        try:
            wait_for("an alert fired", lambda: scalar(engine, FIRED), timeout=60)
            fired_s = time.monotonic() - ready
            wait_for("a fallback row", lambda: scalar(engine, FALLBACKS), timeout=30)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1600})
                    assert check_overview(page, urls["dashboard"]) > 0
                    page.goto(f"{urls['dashboard']}/inbox?refresh=paused", wait_until="domcontentloaded")
                    expect(page.get_by_role("heading", name="Inbox")).to_be_visible(timeout=30_000)
                    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=30_000)
                    expect(page.get_by_text("Discord format")).to_be_visible()
                    assert int(page.locator('[data-testid="stMetricValue"]').first.inner_text()) >= 2
                finally:
                    browser.close()
            wait_for("an alert fired and resolved", lambda: scalar(engine, FIRED_AND_RESOLVED), timeout=75)
            resolved_s = time.monotonic() - ready
            # every phase of the cycle happened: 429s on one key, a revoked key disabled, then restored by a probe
            wait_for("429 pressure", lambda: scalar(engine, ERRORS.format("rate_limited")), timeout=45)
            wait_for("the revoked key refused", lambda: scalar(engine, ERRORS.format("auth")), timeout=30)
            wait_for("the revoked key's alert resolved", lambda: scalar(engine, KEY_ALERT_RESOLVED), timeout=60)
            messages = wait_for(
                "Slack and Discord messages, firing and resolved",
                lambda: (lambda m: m if {(x["format"], x["transition"]) for x in m} >= {
                    ("slack", "firing"), ("discord", "firing"), ("slack", "resolved"), ("discord", "resolved")
                } else None)(get_json(f"{urls['sink']}/messages")[1]["messages"]),
                timeout=20,
            )  # fmt: skip
            status, health = get_json(f"{urls['worker']}/api/admin/ai-health?window=1h", state["admin_token"])
            assert (status, get_json(f"{urls['worker']}/api/admin/ai-health")[0]) == (
                200 if health["status"] != "down" else 503,
                401,
            )
            assert health["statistics"]["totalRequests"] > 0
            assert health["details"]["fallbacks"] > 0
            assert {k["key"] for k in health["services"]["apiKeys"]["anthropic"]} == {"Primary", "Backup 1", "Backup 2"}
        finally:
            engine.dispose()
        tally = _stopped_cleanly(demo, state, tmp_path / "demo")
    assert fired_s <= 60 and resolved_s <= 75
    assert tally["fell_back"] > 0 and set(tally["modes"]) == {"async", "sync", "stream"}
    assert any(m["title"].startswith("[FIRING]") for m in messages)
    assert "webhook slack   [FIRING]" in demo.output  # the sink logs each message readably
    print(f"\nalert fired {fired_s:.0f} s and resolved {resolved_s:.0f} s after the tour; {tally['calls']} calls")


def test_a_demo_killed_by_sigkill_takes_its_children_with_it(tmp_path: Path) -> None:
    """No handler of the demo's runs on SIGKILL: the kernel's parent-death signal stops the children, each as on a
    SIGTERM, so the traffic generator still records every call it made."""
    with running_demo(tmp_path, cycle_s=30) as (demo, state):
        engine = store(state)
        try:
            wait_for("calls recorded", lambda: scalar(engine, LIVE_CALLS), timeout=30)
            assert demo.process is not None
            demo.process.kill()
            demo.process.wait(timeout=10)
            deadline = time.monotonic() + 60
            while (left := process_groups_left(state)) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert left == [], left
            tally = json.loads((tmp_path / "demo" / "traffic.json").read_text())
            assert tally["closed"] is True
            assert scalar(engine, LIVE_CALLS) == scalar(engine, CALL_IDS) == tally["calls"] > 0
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_worker_traffic_and_dashboard_run_on_postgres(chromium: str, scratch_postgres, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    url = scratch_postgres.create("pulsegate_demo")
    with running_demo(tmp_path, "--database-url", url, cycle_s=30) as (demo, state):
        assert state["database_url"].startswith("postgresql")
        engine = store(state)
        try:
            wait_for("a fallback row", lambda: scalar(engine, FALLBACKS), timeout=45)
            kinds = "SELECT count(DISTINCT kind) FROM instance_snapshots"
            wait_for("worker and client heartbeats", lambda: scalar(engine, kinds) == 2, timeout=20)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
                try:
                    assert check_overview(browser.new_page(), state["urls"]["dashboard"]) > 0
                finally:
                    browser.close()
        finally:
            engine.dispose()
        _stopped_cleanly(demo, state, tmp_path / "demo", signal.SIGTERM)  # as a process manager stops it
