"""Dashboard CPU once no browser is connected. Goal: < 2 % of a core, averaged over 60 s starting 30 s after the
last browser disconnects.

- The store is a fresh SQLite file seeded as the Overview's tests seed theirs
  (``benchmarks/support/overview_store.py``): 24 hours of minute traffic ending now on both providers and 1,000
  alert episodes over those hours — renders that are not trivial (before the incident lane, one such render never
  finished).
- ``pulsegate dashboard`` serves it with the clock running (nothing pinned), so each auto-refresh is a real one.
- Headless Chromium opens the Overview in ``--tabs`` tabs, 24 h range, auto-refresh every 5 s, and stays
  ``--connected`` seconds; then the browser closes. After ``--settle`` seconds the dashboard process's CPU time
  (user + system, all threads, from ``/proc``) is read over ``--window`` seconds.
- ``--baseline-root DIR`` first runs the same against another checkout's code (e.g. ``git worktree add``
  of an older commit), served by the same interpreter, for a before/after in one run.

    .venv/bin/python benchmarks/dashboard_idle.py
    .venv/bin/python benchmarks/dashboard_idle.py --baseline-root /tmp/before --write-results
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from results import machine, write_section
from support import free_port, stop

ROOT = Path(__file__).resolve().parents[1]

from support.browser import BROWSER_ARGS, CHROMIUM  # noqa: E402 — the tests' browser, same flags
from support.overview_store import seed_store  # noqa: E402

GOAL = 0.02
EPISODES = 1000


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def share(pid: int, seconds: float) -> float:
    """The share of one core process ``pid`` used over the next ``seconds``."""
    before, started = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_s(pid) - before) / (time.monotonic() - started)


def serve(code: Path, url: str, scratch: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``pulsegate dashboard`` from checkout ``code`` on ``url``, once it answers; and its port."""
    port = free_port()
    # a checkout from before the library was named `pulsegate` keeps its packages at the top
    source = code / "src" if (code / "src" / "pulsegate").is_dir() else code
    env = {**os.environ, "PYTHONPATH": str(source), "DATABASE_URL": url}
    for name in ("DASHBOARD_PASSWORD", "PULSEGATE_DASHBOARD_NOW"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pulsegate.jobs.cli", "dashboard", "--host", "127.0.0.1", "--port", str(port)],
        cwd=scratch,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError(f"the dashboard on port {port} did not answer")


def measure(code: Path, args: argparse.Namespace) -> dict[str, float]:
    """CPU shares while connected and after disconnecting, for the dashboard of checkout ``code``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'store.db'}"
        seed_store(url, episodes=EPISODES, hours=24)
        process, port = serve(code, url, Path(scratch))
        try:
            base = f"http://127.0.0.1:{port}/?range=24h&refresh=5s"
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
                try:
                    for _ in range(args.tabs):
                        page = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
                        page.goto(base, wait_until="domcontentloaded")
                    connected = share(process.pid, args.connected)
                finally:
                    browser.close()
            time.sleep(args.settle)
            idle = share(process.pid, args.window)
            print(f"  {code}: {connected:.1%} of a core connected, {idle:.1%} idle", flush=True)
            return {"connected": connected, "idle": idle}
        finally:
            stop(process)


def render(results: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        "## Dashboard CPU with no browser connected (`benchmarks/dashboard_idle.py`)",
        "",
        f"`pulsegate dashboard` on a SQLite store with 24 h of minute traffic ending now and {EPISODES:,} alert "
        f"episodes over it; headless Chromium holds the Overview open in {args.tabs} tab(s) (24 h range, "
        f"auto-refresh every 5 s) for {args.connected:.0f} s, then closes. CPU of the dashboard process (user + "
        f"system, from `/proc`) over {args.window:.0f} s starting {args.settle:.0f} s after the browser closed. "
        f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end of the run.",
        "",
        "| code | CPU while connected | CPU with no browser | goal < 2 % |",
        "|---|---:|---:|---|",
    ]
    for name, shares in results.items():
        verdict = "met" if shares["idle"] < GOAL else "MISSED"
        lines.append(f"| {name} | {shares['connected']:.1%} | {shares['idle']:.1%} | {verdict} |")
    lines += [
        "",
        "With no browser there is no auto-refresh: Streamlit's `run_every` is a timer in the browser. What kept the "
        "dashboard busy was a render still running after its browser had gone (Streamlit stops a script only at "
        "its next Streamlit call, and one alert-annotated figure took minutes to build); a render is now well "
        "under a second, and a refresh that queued behind a slow render redraws that render's view from the cache "
        "instead of starting another (`dashboard/pacing.py`).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", type=int, default=2, help="browser tabs holding the Overview open (default 2)")
    parser.add_argument("--connected", type=float, default=60, help="seconds connected (default 60)")
    parser.add_argument("--settle", type=float, default=30, help="seconds after the browser closes (default 30)")
    parser.add_argument("--window", type=float, default=60, help="seconds measured after that (default 60)")
    parser.add_argument("--baseline-root", type=Path, help="another checkout to measure first, for comparison")
    parser.add_argument("--baseline-name", default="before", help="its name in the table (default 'before')")
    parser.add_argument("--write-results", action="store_true", help="rewrite this section of RESULTS.md")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    results: dict[str, dict[str, float]] = {}
    if args.baseline_root is not None:
        results[args.baseline_name] = measure(args.baseline_root.resolve(), args)
    results["this checkout"] = measure(ROOT, args)
    body = render(results, args)
    print()
    print(body)
    if args.write_results:
        print(f"\nwrote {write_section('dashboard_idle', body)}")
    if results["this checkout"]["idle"] >= GOAL:
        sys.exit(1)


if __name__ == "__main__":
    main()
