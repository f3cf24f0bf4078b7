"""The headless Chromium the browser tests and the dashboard benchmarks drive (Debian's ``chromium``, installed by
``.ci/run``), with the same flags, so a benchmark measures the page the tests see."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
