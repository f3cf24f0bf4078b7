"""With known key, webhook URL, token, password and hashing-key values configured, a realistic run (see
:mod:`tests.hardening.flow`) leaves none of them — nor their URL-encoded forms — in the database, any process's
log, the dashboard's HTML in a real browser, any API response, or any exception the calls raised. Masked forms and
fingerprints are fine."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from benchmarks.support.browser import BROWSER_ARGS, CHROMIUM
from tests.hardening.flow import ADMIN_TOKEN, DASHBOARD_PASSWORD, Flow, http_get

pytestmark = pytest.mark.slow
PAGES = ("", "keys", "probes", "alerts", "calls", "limits")


def forms(secret: str) -> set[str]:
    """The secret as it might leak: as is, URL-encoded (both flavours), JSON-escaped, base64."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode(),
    }


def assert_clean(flow: Flow, where: str, text: str | bytes) -> None:
    haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    found = [name for name, secret in flow.secrets.items() if any(form in haystack for form in forms(secret))]
    assert not found, f"{where} holds {found}"


def test_no_secret_in_the_database(flow: Flow) -> None:
    connection = sqlite3.connect(flow.store_path)
    try:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"api_usage_metrics", "alert_episodes", "alert_deliveries", "key_health_snapshots"} <= set(tables)
        counts = {}
        for table in tables:
            rows = connection.execute(f'SELECT * FROM "{table}"').fetchall()
            counts[table] = len(rows)
            assert_clean(flow, f"table {table}", repr(rows))
    finally:
        connection.close()
    assert counts["api_usage_metrics"] >= 15 and counts["alert_deliveries"] >= 3, counts
    for path in flow.tmp.rglob("*"):  # the file bytes too: the store, its WAL, the spool
        if path.is_file() and path.name not in ("scenario.json",):
            assert_clean(flow, f"file {path.relative_to(flow.tmp)}", path.read_bytes())


def test_the_run_hit_every_failure_it_meant_to(flow: Flow) -> None:
    connection = sqlite3.connect(flow.store_path)
    try:
        classes = {r[0] for r in connection.execute("SELECT DISTINCT error_class FROM api_usage_metrics")}
        statuses = {r[0] for r in connection.execute("SELECT DISTINCT status_code FROM alert_deliveries")}
    finally:
        connection.close()
    assert {"auth", "rate_limited", "quota", "not_found", "validation"} <= classes, classes
    assert {200, 500} <= statuses, statuses
    assert len(flow.exceptions) >= 3


def test_no_secret_in_any_exception(flow: Flow) -> None:
    for exc in flow.exceptions:
        chain: list[BaseException] = []
        current: BaseException | None = exc
        while current is not None and current not in chain:
            chain.append(current)
            current = current.__cause__ or current.__context__
        for item in chain:
            assert_clean(flow, f"exception {type(item).__name__}", f"{item!s}\n{item!r}\n{item.args!r}")


def test_no_secret_in_any_api_response(flow: Flow) -> None:
    status, body = http_get(f"{flow.worker_url}/openapi.json")
    assert status == 200
    paths = json.loads(body)["paths"]
    values = {"id": "1", "label": "Primary", "provider": "anthropic", "action": "reset"}
    answered = 0
    for template, methods in paths.items():
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
        for method in methods:
            for token in (ADMIN_TOKEN, None, "wrong-" + "x" * 30):
                body_in = b"{}" if method.upper() == "POST" else None
                status, body = http_get(flow.worker_url + path, token, method.upper(), body_in)
                assert status < 500 or path == "/api/admin/ai-health", (method, path, status, body[:200])
                assert_clean(flow, f"{method.upper()} {path}", body)
                answered += 1
    # the pasted-a-secret cases: a key where a label goes, the token in a body
    for probe in (
        f"/api/admin/keys/{quote(flow.secrets['key ANTHROPIC_API_KEY'], safe='')}/reset",
        f"/api/admin/keys/anthropic/{quote(flow.secrets['key ANTHROPIC_API_KEY_2'], safe='')}/disable",
    ):
        status, body = http_get(flow.worker_url + probe, ADMIN_TOKEN, "POST", b"{}")
        assert status == 422, body
        assert_clean(flow, probe.split("/")[3], body)
    status, body = http_get(
        f"{flow.worker_url}/api/admin/probe", ADMIN_TOKEN, "POST", json.dumps({"model": ADMIN_TOKEN}).encode()
    )
    assert status == 422 and b"secret" in body
    assert_clean(flow, "probe with the token as model", body)
    assert answered >= 10


def test_no_secret_in_the_dashboard_html(flow: Flow) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{flow.web_url}/?refresh=paused", wait_until="domcontentloaded")
            page.get_by_label("Password", exact=True).fill(DASHBOARD_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Overview")).to_be_visible(timeout=60_000)
            assert_clean(flow, "the address bar after signing in", page.url)
            for slug in PAGES:
                if slug:
                    page.get_by_role("link", name=slug.capitalize()).first.click()
                    expect(page.get_by_role("heading", name=slug.capitalize())).to_be_visible(timeout=60_000)
                page.wait_for_load_state("networkidle", timeout=30_000)
                page.wait_for_timeout(1500)  # let fragments and grids fill in
                if slug == "keys":  # the data is there: the scan looks at real pages, not empty frames
                    page.wait_for_selector('td:has-text("Backup 1")', state="attached", timeout=30_000)
                assert_clean(flow, f"page {slug or 'overview'} (HTML)", page.content())
                assert_clean(flow, f"page {slug or 'overview'} (text)", page.inner_text("body"))
        finally:
            browser.close()


def test_no_secret_in_any_log_line(flow: Flow) -> None:
    assert flow.log_records, "the test process logged nothing"
    assert_clean(flow, "this process's log", "\n".join(flow.log_records))
    for name, process in flow.processes.items():
        assert process.output or name == "emulator", name
        assert_clean(flow, f"the {name}'s output", process.output)
    worker = flow.processes["worker"].output
    assert "DEBUG" in worker and "alert" in worker.lower()  # debug logging was on: the strictest case


def test_the_secrets_under_test_are_really_configured(flow: Flow) -> None:
    requests = flow.receiver.requests
    assert any(r.headers.get("x-pulsegate-signature") or r.headers.get("x-signature-256") for r in requests) or any(
        "signature" in k for r in requests for k in r.headers
    )
    assert Path(flow.env["ALERT_RULES_FILE"]).is_file()


def test_the_scan_finds_a_secret_where_there_is_one(flow: Flow) -> None:
    # the receiver saw the webhook URLs' secret paths, and the scan must say so (it is not blind)
    with pytest.raises(AssertionError, match="webhook token"):
        assert_clean(flow, "the receiver's request paths", "\n".join(r.path for r in flow.receiver.requests))
    with pytest.raises(AssertionError, match="ADMIN_TOKEN"):
        assert_clean(flow, "an encoded token", "token=" + quote(ADMIN_TOKEN + "/", safe=""))
    with pytest.raises(AssertionError, match="key ANTHROPIC_API_KEY_3"):
        assert_clean(flow, "the emulator's scenario", (flow.tmp / "scenario.json").read_text())
