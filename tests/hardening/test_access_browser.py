"""The dashboard's password gate in a real headless Chromium: no query string and no direct page URL shows a
page's content before signing in, a signed-in session does not open the gate for another browser, and repeated
wrong passwords are told to wait."""

from __future__ import annotations

import pytest

from benchmarks.support.browser import BROWSER_ARGS, CHROMIUM
from pulsegate.dashboard.ui import PAGES
from tests.hardening.flow import DASHBOARD_PASSWORD, Flow

pytestmark = pytest.mark.slow
SLUGS = [slug for *_, slug in PAGES]
BYPASS_QUERIES = [
    "",
    "?authenticated=1",
    "?_pulsegate_authenticated=true",
    "?page=calls",
    "?password=" + "x" * 12,
    "?embed=true",
    "?embed=true&embed_options=hide_loading_screen",
    "?refresh=paused&now=2026-01-01T00:00:00Z&authenticated=1",
]
#: Text that only a page behind the gate draws (page headings and the sidebar filters).
PAGE_ONLY = ["Time range", "Auto-refresh", "Success rate", "Primary", "Backup 1", "Run probe", "Export"]


def _gate_only(page, where: str) -> None:
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    page.wait_for_timeout(800)  # anything a page would draw after the gate has had time to arrive
    text = page.inner_text("body")
    assert "This dashboard is protected by DASHBOARD_PASSWORD." in text, where
    leaked = [word for word in PAGE_ONLY if word in text]
    assert not leaked, (where, leaked)
    for title in ("Overview", "Keys", "Probes", "Alerts", "Calls", "Limits"):
        assert page.get_by_role("heading", name=title).count() == 0, (where, title)
    assert page.locator(".js-plotly-plot, [data-testid='stDataFrame'], [data-testid='stMetric']").count() == 0, where


def test_no_query_string_or_page_url_gets_past_the_gate(flow: Flow) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            for slug in ["", *SLUGS]:
                for query in BYPASS_QUERIES if slug in ("", "calls") else BYPASS_QUERIES[:2]:
                    url = f"{flow.web_url}/{slug if slug != 'overview' else ''}{query}"
                    page.goto(url, wait_until="domcontentloaded")
                    _gate_only(page, url)
            # a session cookie or storage from elsewhere opens nothing either
            page.context.add_cookies([{"name": "authenticated", "value": "1", "url": flow.web_url}])
            page.evaluate("() => { localStorage.setItem('_pulsegate_authenticated', 'true') }")
            page.goto(f"{flow.web_url}/calls", wait_until="domcontentloaded")
            _gate_only(page, "cookie + localStorage")
        finally:
            browser.close()


def test_signing_in_opens_only_that_browser_session_and_wrong_passwords_are_told_to_wait(flow: Flow) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            operator = browser.new_context().new_page()
            operator.goto(f"{flow.web_url}/calls?refresh=paused", wait_until="domcontentloaded")
            _gate_only(operator, "before signing in")
            operator.get_by_label("Password", exact=True).fill(DASHBOARD_PASSWORD)
            operator.get_by_role("button", name="Sign in").click()
            # the page the link named, not the default one
            expect(operator.get_by_role("heading", name="Calls")).to_be_visible(timeout=60_000)
            assert operator.url.split("?")[0].endswith("/calls"), operator.url
            operator.get_by_role("link", name="Keys").first.click()
            expect(operator.get_by_role("heading", name="Keys")).to_be_visible(timeout=60_000)

            stranger = browser.new_context().new_page()  # another browser: its own session, still gated
            stranger.goto(f"{flow.web_url}/calls?refresh=paused", wait_until="domcontentloaded")
            _gate_only(stranger, "another browser while the operator is signed in")
            messages: list[str] = []
            for attempt in range(8):  # waits 0, 0.5, 1, 2 s inline; then the next slot is 4 s off: refused
                stranger.get_by_label("Password", exact=True).fill(f"guess-{attempt}-wrong")
                stranger.get_by_role("button", name="Sign in").click()
                stranger.wait_for_timeout(3000)  # the inline wait (≤ 2 s) and the rerun
                alert = stranger.locator("[data-testid='stAlertContentError']").last
                expect(alert).to_be_visible(timeout=30_000)
                messages.append(alert.inner_text())
                _gate_only(stranger, f"after wrong password {attempt}")
                if messages[-1].startswith("Too many failed sign-ins: wait "):
                    break
            assert messages[0].startswith("Wrong password."), messages
            assert messages[-1].startswith("Too many failed sign-ins: wait "), messages
            assert messages[-1].endswith(" s, then try again."), messages
            # after the wait, the right password gets in (and resets the count for everyone after this test)
            wait_s = int(messages[-1].removeprefix("Too many failed sign-ins: wait ").split(" ")[0])
            stranger.wait_for_timeout(wait_s * 1000 + 500)
            stranger.get_by_label("Password", exact=True).fill(DASHBOARD_PASSWORD)
            stranger.get_by_role("button", name="Sign in").click()
            expect(stranger.get_by_role("heading", name="Calls")).to_be_visible(timeout=60_000)
        finally:
            browser.close()
