"""Dashboard load time: until the Overview's Plotly charts are drawn in a real headless Chromium, against a
one-chart toy Streamlit page served the same way in the same run. Goal: Overview ≤ 1.5 × toy.

- The store is a PostgreSQL database with ~10 M raw rows over 7 days and 1,000 alert episodes over its last day, as
  ``benchmarks/queries.py --keep`` leaves it (its data ends 2025-06-02 12:00 UTC). Its schema is upgraded first
  (``pulsegate.migrations.upgrade``); a store kept before the episodes were part of it gets them added here.
- The dashboard is ``pulsegate dashboard`` with ``PULSEGATE_DASHBOARD_NOW`` pinned to the data's end; the toy page
  (title, one ``px.line`` chart, a button, a metric) runs under the same Streamlit flags. Both servers are warmed
  with one load each (imports, first session) before timing.
- Each load is a fresh browser context (a new Streamlit session): time from ``goto`` until every expected
  ``.js-plotly-plot .main-svg`` is present (the Overview draws one figure of 8 panels on a shared time axis; the toy
  one chart). Loads alternate toy / Overview.
  "Cache miss" loads move ``now=`` one minute back each time so no query result is cached (``st.cache_data``
  keys on the range); "cached" loads repeat the same view within the cache TTL. The goal is checked on misses.

    .venv/bin/python benchmarks/dashboard_load.py                  # against the kept database
    .venv/bin/python benchmarks/dashboard_load.py --url URL --range 7d --write-results
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from queries import EPISODE_SPAN, EPISODES
from results import machine, write_section
from support import free_port, stop

ROOT = Path(__file__).resolve().parents[1]

from support.browser import BROWSER_ARGS, CHROMIUM  # noqa: E402 — the tests' browser, same flags
from support.overview_store import episode_rows, insert_episodes  # noqa: E402

from pulsegate import migrations  # noqa: E402
from pulsegate.core.queries.alerts import alert_episode_count  # noqa: E402
from pulsegate.core.store import create_store_engine  # noqa: E402
from pulsegate.jobs.cli.serve_commands import STREAMLIT_FLAGS  # noqa: E402

DEFAULT_URL = os.environ.get(
    "PULSEGATE_BENCH_DASHBOARD_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/pulsegate_bench_queries_5069_674228f4",
)
DATA_END = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
GOAL = 1.5
OVERVIEW_CHARTS = 1
SERVE = ["--server.address", "127.0.0.1", "--server.port"]
TOY = """import pandas as pd
import plotly.express as px
import streamlit as st

st.title("Toy")
frame = pd.DataFrame({"x": range(60), "y": [i % 7 for i in range(60)]})
st.plotly_chart(px.line(frame, x="x", y="y"), width="stretch")
if st.button("Run probe now", key="probe"):
    st.session_state.probe_runs = st.session_state.get("probe_runs", 0) + 1
st.metric("Probes", st.session_state.get("probe_runs", 0))
"""


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"port {port} did not answer")


def load_s(browser, url: str, charts: int) -> float:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    try:
        page = context.new_page()
        started = time.monotonic()
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_function(
            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=120_000, polling=50
        )
        elapsed = time.monotonic() - started
        if "stException" in page.content():
            raise RuntimeError(f"{url} shows an exception")
        return elapsed
    finally:
        context.close()


def run(url: str, range_name: str, repeats: int, screenshot: Path | None) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    migrations.upgrade(url)
    web_port, toy_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PULSEGATE_DASHBOARD_NOW": DATA_END.isoformat(),
    }
    env.pop("DASHBOARD_PASSWORD", None)
    with tempfile.TemporaryDirectory() as scratch:
        toy = Path(scratch) / "toy.py"
        toy.write_text(TOY)
        servers = [
            start(
                [
                    sys.executable,
                    "-m",
                    "pulsegate.jobs.cli",
                    "dashboard",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(web_port),
                ],
                {**env, "HOST": "127.0.0.1"},
                web_port,
            ),
            start(
                [sys.executable, "-m", "streamlit", "run", str(toy), *SERVE, str(toy_port), *STREAMLIT_FLAGS],
                env,
                toy_port,
            ),
        ]
        try:
            base = f"http://127.0.0.1:{web_port}/?refresh=paused&range={range_name}"
            toy_url = f"http://127.0.0.1:{toy_port}/"
            times: dict[str, list[float]] = {"toy": [], "overview (cache miss)": [], "overview (cached)": []}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
                try:
                    load_s(browser, toy_url, 1)  # warm-up: imports and the first session of each server
                    load_s(browser, base, OVERVIEW_CHARTS)
                    for i in range(repeats):
                        now = (DATA_END - timedelta(minutes=i + 1)).isoformat().replace("+00:00", "Z")
                        times["toy"].append(load_s(browser, toy_url, 1))
                        times["overview (cache miss)"].append(load_s(browser, f"{base}&now={now}", OVERVIEW_CHARTS))
                        times["overview (cached)"].append(load_s(browser, f"{base}&now={now}", OVERVIEW_CHARTS))
                        print(
                            f"  run {i + 1}: toy {times['toy'][-1]:.2f} s, overview "
                            f"{times['overview (cache miss)'][-1]:.2f} s miss / "
                            f"{times['overview (cached)'][-1]:.2f} s cached",
                            flush=True,
                        )
                    if screenshot is not None:
                        context = browser.new_context(viewport={"width": 1500, "height": 1900})
                        page = context.new_page()
                        page.goto(base, wait_until="domcontentloaded")
                        page.wait_for_function(
                            f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {OVERVIEW_CHARTS}",
                            timeout=120_000,
                        )
                        page.wait_for_timeout(1000)
                        page.screenshot(path=str(screenshot), full_page=True)
                        context.close()
                finally:
                    browser.close()
        finally:
            for server in servers:
                stop(server)
    return times


def episodes_in_range(url: str) -> int:
    """Alert episodes over the data's last day; adds the benchmark's 1,000 to a store kept without them."""
    engine = create_store_engine(url)
    try:
        count = alert_episode_count(engine, DATA_END - EPISODE_SPAN, DATA_END)
        if count < EPISODES:
            insert_episodes(engine, episode_rows(DATA_END - EPISODE_SPAN, DATA_END, EPISODES))
            count = alert_episode_count(engine, DATA_END - EPISODE_SPAN, DATA_END)
        return count
    finally:
        engine.dispose()


def raw_rows(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT reltuples::bigint FROM pg_class WHERE relname = 'api_usage_metrics'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def render(rows: int, episodes: int, range_name: str, times: dict[str, list[float]]) -> str:
    med = {name: statistics.median(values) for name, values in times.items()}
    ratio = med["overview (cache miss)"] / med["toy"]
    cached = med["overview (cached)"] / med["toy"]
    verdict = "met" if ratio <= GOAL else "MISSED"
    lines = [
        "## Dashboard load time (`benchmarks/dashboard_load.py`)",
        "",
        f"Time from `goto` until the charts are drawn in headless Chromium ({CHROMIUM}, Playwright), each load a "
        f"fresh browser session; PostgreSQL store with ~{rows / 1e6:.1f} M raw rows over 7 days and {episodes:,} "
        f"alert episodes in the Overview's range {range_name} (one Plotly figure: the incident lane over 8 panels; "
        "6 KPI tiles, provider status, active alerts), `now` pinned to the data's end. Median of "
        f"{len(times['toy'])} alternating loads after one warm-up load per server. Machine: {machine()}; load "
        f"average {os.getloadavg()[0]:.1f} at the end of the run.",
        "",
        "| page | median | min | max | × toy |",
        "|---|---|---|---|---|",
    ]
    for name, values in times.items():
        lines.append(
            f"| {name} | {med[name]:.2f} s | {min(values):.2f} s | {max(values):.2f} s | {med[name] / med['toy']:.2f} |"
        )
    lines += [
        "",
        f"Goal: Overview ≤ {GOAL} × toy on cache misses — **{verdict}** ({ratio:.2f} ×; cached {cached:.2f} ×).",
        "",
        "Where the time goes (Chrome CPU profile and resource timings of the Overview): the server side is small "
        "(script run 0.3–0.7 s on a cache miss, of which the health report ~0.1 s); the page's cost is in the browser. "
        "Measured steps that brought it from 1.8 × to the figure above: Plotly's 4.7 MB bundle is fetched when the "
        "browser meets the first chart, so the chart is sent first (into its slot below the tiles) and the sidebar "
        "widgets last (their values come from session state); one figure of 8 subplots on a shared time axis "
        "instead of 7 charts (Plotly's layout work, text measuring, ~1 s less); stacked areas instead of ~2,900 "
        "SVG bars; markers only on sparse series; KPI sparklines as inline SVG instead of `st.metric(chart_data=…)`, "
        "which loads Vega as well. Alert episodes cost nothing per episode in the figure: they are merged into "
        "at most 150 bars, one trace per lane and one list of shapes (before, one line and one label added per "
        "alert start or end made the build quadratic: 10 episodes took minutes, 1,000 never finished). The "
        "Overview's active alerts are a static table of the ten newest: the interactive grid's script cost the "
        "page ~0.35 s (measured by leaving the table out: 1.43 × against 1.65 ×).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL store with the benchmark data")
    parser.add_argument("--range", default="24h", choices=("15m", "1h", "6h", "24h", "7d"), help="Overview range")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--screenshot", type=Path, help="also save a full-page Overview screenshot here")
    parser.add_argument("--write-results", action="store_true", help="rewrite this section of RESULTS.md")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    rows = raw_rows(args.url)
    migrations.upgrade(args.url)
    episodes = episodes_in_range(args.url)
    print(f"{rows:,} raw rows, {episodes:,} alert episodes; Overview range {args.range}; {args.repeats} loads each")
    times = run(args.url, args.range, args.repeats, args.screenshot)
    body = render(rows, episodes, args.range, times)
    print()
    print(body)
    if args.write_results:
        print(f"\nwrote {write_section('dashboard_load', body)}")


if __name__ == "__main__":
    main()
