"""The Overview served for real (``pulsegate dashboard`` on a store, headless Chromium): every page load stays on
loopback and lays out without overlap, a refresh that queued behind a slow render starts no new one, and with no
browser connected the dashboard goes quiet — even with 1,000 alert episodes in the range."""

from __future__ import annotations

import os
import re
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from benchmarks.support.browser import BROWSER_ARGS
from benchmarks.support.overview_store import seed_store
from pulsegate.dashboard.overview_chart import LANE_TITLE, PANELS
from tests.support.browser import require_chromium
from tests.support.processes import BackgroundProcess, free_port, wait_http

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.conftest import ScratchPostgres

pytestmark = pytest.mark.slow
PAGES = ("", "keys", "probes", "alerts", "calls", "limits")
CHART = ".js-plotly-plot .main-svg"
AS_OF = re.compile(r"as of (\d\d:\d\d:\d\d) UTC")
ROLLUPS = "metric_rollups_1m, metric_rollups_10m, metric_rollups_1h"


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


@contextmanager
def dashboard(url: str, cwd: Path) -> Iterator[tuple[str, int]]:
    """``pulsegate dashboard`` on ``url``: its base URL and process id."""
    port = free_port()
    with BackgroundProcess(["dashboard", "--port", str(port)], cwd=cwd, env={"DATABASE_URL": url}) as web:
        assert web.process is not None
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=60, process=web.process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as health:
            assert (health.status, health.read()) == (200, b"ok")  # as the README's health check says
        yield f"http://127.0.0.1:{port}", web.process.pid


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


LAYOUT_JS = """() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {
    figure: box(document.querySelector('.js-plotly-plot .main-svg')),
    notes: [...document.querySelectorAll('.js-plotly-plot .infolayer .annotation')]
      .map((a) => ({text: a.textContent, box: box(a)})),
    ticks: [...document.querySelectorAll('.js-plotly-plot .ytick text')].map((t) => t.textContent),
  };
}"""


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_pages_reach_only_loopback_and_the_overview_lays_out_without_overlap(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = f"sqlite:///{tmp_path / 'store.db'}"
    seed_store(url, episodes=40)
    requests: list[str] = []
    with dashboard(url, tmp_path) as (base, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            for slug in PAGES:
                page.goto(f"{base}/{slug}?refresh=paused", wait_until="domcontentloaded")
                heading = slug.capitalize() or "Overview"
                expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=60_000)
                if not slug:
                    page.wait_for_selector(CHART, timeout=60_000)
                    page.wait_for_timeout(1000)
                    layout = page.evaluate(LAYOUT_JS)
                page.wait_for_timeout(1500)  # late requests: icons, fonts, the favicon
        finally:
            browser.close()
    hosts = {urlsplit(u).hostname for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts == {"127.0.0.1"}, sorted(u for u in requests if "127.0.0.1" not in u)
    names = (LANE_TITLE, *PANELS)
    titles = [n for n in layout["notes"] if n["text"].startswith(names)]
    assert len(titles) == len(names)
    left, right = layout["figure"][0], layout["figure"][2]
    for title in titles:  # each title (and the legend in it) inside the figure: nothing cut off
        assert left <= title["box"][0] and title["box"][2] <= right, title
    for i, a in enumerate(titles):  # and none runs into another
        assert not any(overlaps(a["box"], b["box"]) for b in titles[i + 1 :]), a["text"]
    assert not [t for t in layout["ticks"] if t.startswith(("−", "-"))]  # no negative counts on any axis


def test_with_no_browser_connected_the_dashboard_goes_quiet(chromium: str, tmp_path: Path) -> None:
    """A shortened form of the goal ``benchmarks/dashboard_idle.py`` measures (there: 60 s, 30 s after)."""
    from playwright.sync_api import sync_playwright

    url = f"sqlite:///{tmp_path / 'store.db'}"
    seed_store(url, episodes=1000)
    with dashboard(url, tmp_path) as (base, pid), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.goto(f"{base}/?range=24h&refresh=5s", wait_until="domcontentloaded")
            page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
            page.wait_for_timeout(12_000)  # a few auto-refreshes
        finally:
            browser.close()
        time.sleep(5)
        before, started = cpu_s(pid), time.monotonic()
        time.sleep(10)
        share = (cpu_s(pid) - before) / (time.monotonic() - started)
    assert share < 0.02, f"{share:.1%} of a core with no browser connected"


def test_a_refresh_that_queued_behind_a_slow_render_starts_no_new_one(
    chromium: str, tmp_path: Path, scratch_postgres: ScratchPostgres
) -> None:
    """A render held for ~9 s by a table lock (refresh every 5 s, so a refresh queues behind it): once it ends,
    the queued refresh redraws its view, and no fresh render starts before as long again has passed."""
    from playwright.sync_api import sync_playwright

    url = scratch_postgres.create()
    seed_store(url, episodes=0)
    locker = sa.create_engine(url)
    seen: list[tuple[float, str]] = []  # (when, the "as of" of the render on the page) at each change

    def watch(page: Page, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = AS_OF.search(page.inner_text("body"))
            if found and (not seen or seen[-1][1] != found[1]):
                seen.append((time.monotonic(), found[1]))
            page.wait_for_timeout(100)

    try:
        with dashboard(url, tmp_path) as (base, _), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                page.goto(f"{base}/?range=1h&refresh=5s", wait_until="domcontentloaded")
                page.wait_for_selector(CHART, timeout=60_000)
                watch(page, 6)  # at least one refresh
                with locker.connect() as connection:
                    connection.execute(sa.text("BEGIN"))
                    connection.execute(sa.text(f"LOCK TABLE {ROLLUPS} IN ACCESS EXCLUSIVE MODE"))
                    renders = len(seen)
                    watch(page, 6)  # the next render starts and waits on the lock
                    assert len(seen) > renders, "no render started while the tables were locked"
                    blocked_at = seen[-1][0]
                    watch(page, max(0.0, blocked_at + 9 - time.monotonic()))
                    connection.execute(sa.text("ROLLBACK"))
                released = time.monotonic()
                renders = len(seen)
                watch(page, 8)
            finally:
                browser.close()
    finally:
        locker.dispose()
    after = [when - released for when, _ in seen[renders:]]
    assert not after or after[0] >= 5.0, f"a fresh render started {after[0]:.1f} s after the slow one ended"
