"""One results file for every benchmark: each rewrites only its own ``<!-- name:begin -->`` … ``end`` section."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = (
    "# Benchmark results\n\n"
    "Each section is rewritten by the benchmark named in it; figures come from one run on the machine it names, with\n"
    "the command and the size it used. Goals are ratios against a baseline measured in the same run.\n\n"
    "`make bench` runs them all (`benchmarks/run_all.py`); the dashboard-queries benchmark loads `BENCH_ROWS` raw\n"
    "rows (default 1,000,000; `make bench BENCH_ROWS=10000000` for 10 M) and its section names the size used.\n"
)


def write_section(name: str, body: str, path: Path = RESULTS) -> Path:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path


def machine(*extras: str) -> str:
    """``2 CPUs (AMD EPYC), Python 3.11.7, Linux 6.1``, plus any library versions the caller names."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    parts = [f"{os.cpu_count()} CPUs ({model})", f"Python {platform.python_version()}", *extras]
    return ", ".join([*parts, f"{platform.system()} {platform.release()}"])
