"""End to end in a real headless Chromium: emulator, worker, AIClient traffic and ``pulsegate dashboard`` as
processes on one SQLite store; the Overview draws its Plotly charts and "Run probe" shows the worker's result.

Uses Debian's ``/usr/bin/chromium`` through Playwright (never a downloaded browser). Without it the test skips
with the reason — except with ``CI`` set, where it fails: ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from benchmarks.support.browser import BROWSER_ARGS
from pulsegate import migrations
from pulsegate.core.client import AIClient
from pulsegate.core.request import ModelConfig
from pulsegate.core.settings import load_settings
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS
from tests.support.browser import require_chromium
from tests.support.processes import BackgroundProcess, free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshot-overview.png"
OVERVIEW_CHARTS = 1  # one figure, every panel on one time axis
CHART = ".js-plotly-plot .main-svg"
GRID = '[data-testid="stDataFrame"]'
#: Each page and what must be drawn before its screenshot.
PAGES = {"keys": (CHART, GRID), "probes": (CHART, GRID), "alerts": (GRID,), "calls": (GRID,), "limits": (CHART, GRID)}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


def drive_traffic(env: dict[str, str], calls: int) -> None:
    """A few real calls through AIClient so the charts have data (rows flushed on close)."""
    settings = load_settings(environ=env, env_file=None)
    client = AIClient.from_env(settings=settings)
    try:
        for i in range(calls):
            model = ModelConfig(model="claude-sonnet-4-6", max_tokens=16)
            if i % 3 == 2:
                model = ModelConfig(provider="openai", model="gpt-4.1-mini", max_tokens=16)
            client.generate_response_sync(model, [{"role": "user", "content": f"hello {i}"}])
    finally:
        client.close()


def wait_until_live(store_url: str, timeout_s: float) -> None:
    """Until the worker has been heartbeating for a few seconds: the dashboard asks about "now" rounded down to
    5 s (``pulsegate.dashboard.filters.state_time``), so a first heartbeat newer than that is not in the page yet."""
    from datetime import UTC, datetime, timedelta

    import sqlalchemy as sa

    from pulsegate.core.store import create_store_engine
    from pulsegate.core.store.tables import instances
    from pulsegate.dashboard.filters import QUANTUM_S

    engine = create_store_engine(store_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with engine.connect() as connection:
                first = connection.execute(sa.select(sa.func.min(instances.c.first_seen))).scalar()
            if first is not None and first <= datetime.now(UTC) - timedelta(seconds=QUANTUM_S + 1):
                return
            assert time.monotonic() < deadline, f"no heartbeat old enough in the store after {timeout_s} s"
            time.sleep(0.2)
    finally:
        engine.dispose()


def test_overview_draws_charts_and_run_probe_shows_the_result(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    store = f"sqlite:///{tmp_path / 'store.db'}"
    migrations.upgrade(store)
    emulator_port, worker_port, web_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{emulator_port}"
    env = {
        "DATABASE_URL": store,
        "SPOOL_DIR": str(tmp_path / "spool"),
        "ANTHROPIC_API_KEY": ANTHROPIC_KEYS[0],
        "OPENAI_API_KEY": OPENAI_KEYS[0],
        "ANTHROPIC_BASE_URL": base,
        "OPENAI_BASE_URL": f"{base}/v1",
        "HEARTBEAT_INTERVAL_S": "5",  # stale after 15 s: on a busy 2-CPU CI box the worker may miss a beat or two
        "PROBE_INTERVAL_S": "3600",
    }
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with (
        BackgroundProcess(["emulator", "--port", str(emulator_port)], cwd=tmp_path) as emulator,
        BackgroundProcess(["worker", "--port", str(worker_port)], cwd=tmp_path, env=env) as worker,
        BackgroundProcess(["dashboard", "--port", str(web_port)], cwd=tmp_path, env=env) as web,
    ):
        wait_http(f"{base}/v1/models", timeout=30, process=emulator.process)
        worker.wait_for_output("worker started", timeout=60)
        drive_traffic(env, calls=9)
        wait_http(f"http://127.0.0.1:{web_port}/_stcore/health", timeout=60, process=web.process)
        wait_until_live(store, timeout_s=30)  # the page is loaded once (refresh paused): the worker must show in it
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1900})
                started = time.monotonic()
                page.goto(f"http://127.0.0.1:{web_port}/?refresh=paused", wait_until="domcontentloaded")
                page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
                expect(page.locator(".js-plotly-plot")).to_have_count(OVERVIEW_CHARTS, timeout=30_000)
                drawn_s = time.monotonic() - started
                expect(page.get_by_text(re.compile(r"^anthropic: (ok|degraded)"))).to_be_visible(timeout=30_000)
                metric = page.locator('[data-testid="stMetricValue"]').first
                expect(metric).to_have_text(re.compile(r"^\d+$"), timeout=30_000)
                assert int(metric.inner_text()) >= 9  # the calls above (plus any probe the worker ran)
                page.screenshot(path=str(shots / "overview.png"), full_page=True)
                page.get_by_role("button", name="Run probe").click()
                result = page.get_by_text("2/2 passed")
                expect(result).to_be_visible(timeout=30_000)
                result.scroll_into_view_if_needed()  # data grids mount when scrolled into view
                expect(page.locator(GRID).first).to_be_visible(timeout=30_000)
                page.wait_for_timeout(1000)  # let the result grid paint its canvas
                page.screenshot(path=str(shots / "overview-probe.png"), full_page=True)
                for slug, ready in PAGES.items():
                    page.goto(f"http://127.0.0.1:{web_port}/{slug}?refresh=paused", wait_until="domcontentloaded")
                    expect(page.get_by_role("heading", name=slug.capitalize())).to_be_visible(timeout=30_000)
                    for selector in ready:
                        expect(page.locator(selector).first).to_be_visible(timeout=30_000)
                    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
                    expect(page.get_by_text("No live instance reports any key")).to_have_count(0)  # worker is live
                    page.wait_for_timeout(1000)  # let the data grids paint their canvases
                    page.screenshot(path=str(shots / f"{slug}.png"), full_page=True)
            finally:
                browser.close()
    if os.environ.get("PULSEGATE_UPDATE_SCREENSHOT"):  # refresh the README's picture on purpose only
        shutil.copyfile(shots / "overview-probe.png", SCREENSHOT)
    print(f"\nscreenshots in {shots}; Overview charts drawn {drawn_s:.1f} s after goto")
