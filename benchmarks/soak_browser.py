"""The soak's Chromium: the Overview kept open as an operator keeps it, timed reloads against the toy page, the page's
JS heap, and a log of every request the browser makes.

Headless Chromium is driven by Playwright with the tests' path and flags (support/browser.py). One browser
context holds three tabs:

- the **watcher**: the Overview (``?range=15m``, the demo's link) opened once and left alone, auto-refreshing every
  10 s for the whole run. Its JS heap (after a forced garbage collection, CDP ``HeapProfiler.collectGarbage`` then
  ``Performance.getMetrics``) is what "the browser's memory" means here: a leak in the page shows there.
- the **timing** tab: each minute it opens the toy page, then the Overview, and measures from navigation until the
  page's Plotly figure is drawn (``.js-plotly-plot .main-svg`` present), as ``benchmarks/dashboard_load.py`` does;
  it then returns to ``about:blank``, so its Streamlit session ends like a closed tab. The cache is warm for both
  pages alike, so the ratio compares like with like.

Every request of every tab is logged twice — Playwright's ``request`` event and the DevTools ``Network`` domain
(``requestWillBeSent``, ``webSocketCreated``) — and any whose host is not loopback is reported.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from support.browser import BROWSER_ARGS, CHROMIUM

VIEWPORT = {"width": 1500, "height": 1000}
SHOT_VIEWPORT = {"width": 1500, "height": 2200}
SETTLED = (  # Streamlit greys out elements of a run in progress and shows its status widget meanwhile
    "!document.querySelector('[data-stale=\"true\"]') && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
)
DRAWN = "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 1"
RANGE_END = re.compile(r"→ (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})


def foreign_host(url: str) -> str | None:
    """The host of ``url`` when it is a network URL to a host other than loopback; None otherwise (``data:``,
    ``blob:``, ``about:``, ``chrome:`` and loopback URLs)."""
    parts = urlsplit(url)
    if parts.scheme not in NETWORK_SCHEMES:
        return None
    host = (parts.hostname or "").lower()
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return None
    return host or url


@dataclass
class NetworkLog:
    """Requests seen, by source (``playwright`` / ``cdp``); ``foreign`` keeps each non-loopback URL once."""

    seen: int = 0
    foreign: dict[str, str] = field(default_factory=dict)  # url -> which log saw it first

    def note(self, url: str, source: str) -> None:
        self.seen += 1
        if foreign_host(url) is not None:
            self.foreign.setdefault(url, source)


class SoakBrowser:
    """Chromium with the watcher and timing tabs. Use from one thread (Playwright's sync API)."""

    def __init__(self, overview_url: str, toy_url: str, draw_timeout_s: float) -> None:
        from playwright.sync_api import sync_playwright

        self.overview_url = overview_url
        self.toy_url = toy_url
        self.draw_timeout_s = draw_timeout_s
        self.network = NetworkLog()
        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        self.context = self.browser.new_context(viewport=VIEWPORT)
        self.context.on("request", lambda request: self.network.note(request.url, "playwright"))
        self.timing = self._page()
        self.watcher = self._page()
        self._watcher_cdp = self.context.new_cdp_session(self.watcher)
        self._watcher_cdp.send("Performance.enable")

    def _page(self) -> Any:
        page = self.context.new_page()
        cdp = self.context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", lambda event: self.network.note(event["request"]["url"], "cdp"))
        cdp.on("Network.webSocketCreated", lambda event: self.network.note(event["url"], "cdp"))
        cdp.send("Network.enable")
        return page

    def open_watcher(self) -> float | None:
        """Open the Overview in the watcher tab (left open from now on); seconds until drawn, None if not."""
        return self._draw(self.watcher, self.overview_url)

    def draw_s(self, url: str) -> float | None:
        """Seconds from navigating the timing tab to ``url`` until its Plotly figure is drawn; None when it is not
        drawn within the timeout or the page shows an exception. The tab is left on ``about:blank``."""
        try:
            return self._draw(self.timing, url)
        finally:
            self.timing.goto("about:blank")

    def _draw(self, page: Any, url: str) -> float | None:
        from playwright.sync_api import Error as PlaywrightError

        started = time.monotonic()
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=self.draw_timeout_s * 1000)
            left = max(0.1, self.draw_timeout_s - (time.monotonic() - started))
            page.wait_for_function(DRAWN, timeout=left * 1000, polling=50)
        except PlaywrightError:  # timeouts included
            return None
        elapsed = time.monotonic() - started
        if page.locator(".stException").count():
            return None
        return elapsed

    def screenshot(self, path: Path) -> None:
        """The Overview as the timing tab draws it now, in a viewport tall enough for every panel, once Streamlit
        has finished the run (no element greyed out as stale, or 15 s)."""
        self.timing.set_viewport_size(SHOT_VIEWPORT)
        try:
            if self._draw(self.timing, self.overview_url) is not None:
                with contextlib.suppress(Exception):
                    self.timing.wait_for_function(SETTLED, timeout=15_000, polling=200)
                self.timing.wait_for_timeout(500)
            self.timing.screenshot(path=str(path), full_page=True)
        finally:
            self.timing.goto("about:blank")
            self.timing.set_viewport_size(VIEWPORT)

    def js_heap_bytes(self) -> int | None:
        """The watcher tab's used JS heap after a full garbage collection."""
        try:
            self._watcher_cdp.send("HeapProfiler.collectGarbage")
            metrics = self._watcher_cdp.send("Performance.getMetrics")["metrics"]
        except Exception:  # a crashed or closed tab: reported as missing
            return None
        values = {m["name"]: m["value"] for m in metrics}
        used = values.get("JSHeapUsedSize")
        return int(used) if used is not None else None

    def watcher_drawn(self) -> bool:
        """Whether the watcher tab shows its figure now (it should, between its auto-refreshes too)."""
        try:
            return bool(self.watcher.evaluate(DRAWN))
        except Exception:
            return False

    def watcher_data_age_s(self) -> float | None:
        """How old the watcher tab's data is: now minus the end of the range its caption shows (``… → 2026-12-06
        21:30 UTC``, to the minute). An auto-refresh that never completes leaves the page drawn but stale; None when
        no caption of that form is shown."""
        try:
            text = self.watcher.evaluate("document.body.innerText")
        except Exception:
            return None
        found = RANGE_END.findall(text or "")
        if not found:
            return None
        end = datetime.strptime(found[0], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
        return max(0.0, (datetime.now(UTC) - end).total_seconds())

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._playwright.stop()
