"""A million-row CSV export through the real dashboard (``pulsegate dashboard``) and a real Chromium, on SQLite and
PostgreSQL: the file holds exactly the filtered rows, and the dashboard's memory grows by less than 100 MiB.

The rows are generated inside the database (one INSERT … SELECT), not through the call wrapper: a million real calls
would take an hour. The page is driven in Chromium up to the link; the file is then read over HTTP by the test as a
browser would (gzip accepted), while a thread samples the dashboard's resident memory.
"""

from __future__ import annotations

import csv
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest
import sqlalchemy as sa

from benchmarks.support.browser import BROWSER_ARGS
from pulsegate import migrations
from pulsegate.core.store import create_store_engine
from pulsegate.dashboard.filters import NOW_ENV
from tests.support.browser import require_chromium
from tests.support.processes import BackgroundProcess, free_port, wait_http

pytestmark = pytest.mark.slow

ROWS = 1_000_000
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STEP_MS = 50  # row i starts (i + 1) × 50 ms before NOW: a million rows span 13.9 h, inside a 24 h range
RSS_BUDGET = 100 * 1024 * 1024
KEYS = ("Primary", "Backup 1", "Backup 2")
COLUMNS = (
    "id, ts, call_id, attempt, is_final, source, provider, model, key_label, outcome, error_class, http_status, "
    "request_id, latency_ms, queue_wait_ms, input_tokens, output_tokens, cost_usd, priority, streamed, user_id, "
    "feature, instance_id"
)

SQLITE_ROWS = f"""
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :count - 1)
INSERT INTO api_usage_metrics ({COLUMNS})
SELECT printf('%032x', i + :offset),
       strftime('%Y-%m-%d %H:%M:%S', (:base_ms - (i + 1) * {STEP_MS}) / 1000, 'unixepoch')
         || printf('.%06d', ((:base_ms - (i + 1) * {STEP_MS}) % 1000) * 1000),
       printf('%032x', i + :offset + 100000000), 1, 1, 'live', :provider, 'claude-sonnet-4-6',
       CASE i % 3 WHEN 0 THEN 'Primary' WHEN 1 THEN 'Backup 1' ELSE 'Backup 2' END,
       CASE WHEN i % 10 = 0 THEN 'error' ELSE 'success' END,
       CASE WHEN i % 10 = 0 THEN 'overloaded' END,
       CASE WHEN i % 10 = 0 THEN 529 ELSE 200 END,
       'req_' || i, 100 + (i % 1000) * 0.25, 0.0, i % 500, i % 300, (i % 1000) * 0.000001, 5, i % 2,
       'user-' || (i % 100), 'chat', 'load'
FROM n
"""
POSTGRES_ROWS = f"""
INSERT INTO api_usage_metrics ({COLUMNS})
SELECT lpad(to_hex(i + :offset), 32, '0')::uuid,
       CAST(:base AS timestamptz) - (i + 1) * interval '{STEP_MS} milliseconds',
       lpad(to_hex(i + :offset + 100000000), 32, '0')::uuid, 1, true, 'live', :provider, 'claude-sonnet-4-6',
       CASE i % 3 WHEN 0 THEN 'Primary' WHEN 1 THEN 'Backup 1' ELSE 'Backup 2' END,
       CASE WHEN i % 10 = 0 THEN 'error' ELSE 'success' END,
       CASE WHEN i % 10 = 0 THEN 'overloaded' END,
       CASE WHEN i % 10 = 0 THEN 529 ELSE 200 END,
       'req_' || i, 100 + (i % 1000) * 0.25::float8, 0.0, i % 500, i % 300, (i % 1000) * 0.000001::float8, 5,
       i % 2 = 1, 'user-' || (i % 100), 'chat', 'load'
FROM generate_series(0, :count - 1) AS i
"""


def load(url: str) -> None:
    """A million anthropic rows in the range, plus rows the filter must leave out: 20,000 openai rows in the range
    and 1,000 anthropic rows older than the range."""
    engine = create_store_engine(url)
    statement = sa.text(SQLITE_ROWS if engine.dialect.name == "sqlite" else POSTGRES_ROWS)
    base_ms = int(NOW.timestamp() * 1000)
    batches = [
        {"count": ROWS, "offset": 0, "provider": "anthropic", "base_ms": base_ms},
        {"count": 20_000, "offset": 2 * ROWS, "provider": "openai", "base_ms": base_ms},
        {"count": 1_000, "offset": 3 * ROWS, "provider": "anthropic", "base_ms": base_ms - 25 * 3600 * 1000},
    ]
    try:
        with engine.begin() as connection:
            for batch in batches:
                base = datetime.fromtimestamp(batch["base_ms"] / 1000, UTC)
                connection.execute(statement, {**batch, "base": base})
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("ANALYZE api_usage_metrics"))
    finally:
        engine.dispose()


def expected_row(i: int) -> dict[str, str]:
    """Row ``i`` of the million as the CSV must show it."""
    error = i % 10 == 0
    return {
        "id": str(uuid.UUID(int=i)),
        "ts": str(NOW - timedelta(milliseconds=(i + 1) * STEP_MS)),
        "key_label": KEYS[i % 3],
        "outcome": "error" if error else "success",
        "error_class": "overloaded" if error else "",
        "http_status": "529" if error else "200",
        "request_id": f"req_{i}",
        "latency_ms": str(100 + (i % 1000) * 0.25),
        "input_tokens": str(i % 500),
        "cost_usd": str((i % 1000) * 0.000001),
        "streamed": str(i % 2 == 1),
        "provider": "anthropic",
    }


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class Sampler(threading.Thread):
    """The highest resident memory of ``pid`` seen every 50 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return max(self.peak, rss(self.pid))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def big_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'big.db'}"
    else:
        url = request.getfixturevalue("scratch_postgres").create("pulsegate_export")
    migrations.upgrade(url)
    started = time.monotonic()
    load(url)
    print(f"\n{request.param}: {ROWS:,} rows loaded in {time.monotonic() - started:.1f} s")
    return url


def test_a_million_row_export_is_exact_and_costs_the_dashboard_under_100_mib(big_store: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = require_chromium()
    port = free_port()
    env = {"DATABASE_URL": big_store, NOW_ENV: NOW.isoformat()}
    with BackgroundProcess(["dashboard", "--port", str(port)], cwd=tmp_path, env=env) as web:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/_stcore/health", timeout=60, process=web.process)
        pid = web.process.pid
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 1200})
                page.goto(f"{base}/calls?range=24h&provider=anthropic&refresh=paused", wait_until="domcontentloaded")
                expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
                page.wait_for_timeout(2000)
                baseline = rss(pid)
                sampler = Sampler(pid)
                sampler.start()
                started = time.monotonic()
                page.get_by_role("button", name="Export CSV").click()
                link = page.get_by_role("link", name="Download CSV (1,000,000 calls)")
                expect(link).to_be_visible(timeout=120_000)
                href = link.get_attribute("href")
            finally:
                browser.close()
        assert href is not None and href.startswith("/export/calls.csv?token=")
        found, count, header = {}, 0, None
        wanted = {0, 1, 2, 499_999, ROWS - 1}
        with httpx.stream("GET", base + href, headers={"Accept-Encoding": "gzip"}, timeout=600) as response:
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip"
            for record in csv.reader(response.iter_lines()):
                if header is None:
                    header = record
                    continue
                if count in wanted:
                    found[count] = dict(zip(header, record, strict=True))
                count += 1
        took = time.monotonic() - started
        growth = sampler.stop() - baseline
        mib = 2**20
        print(f"exported {count:,} rows in {took:.1f} s; dashboard RSS {baseline / mib:.0f} + {growth / mib:.1f} MiB")
    assert count == ROWS
    assert "user_id" not in header  # nobody signed in: no user ids in the file
    for index, row in found.items():
        expected = expected_row(index)
        assert {name: row[name] for name in expected} == expected, index
    assert growth < RSS_BUDGET, f"the dashboard grew by {growth / 2**20:.1f} MiB exporting {ROWS:,} rows"
