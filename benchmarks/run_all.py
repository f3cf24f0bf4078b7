"""Every benchmark, one after another, each rewriting its section of ``benchmarks/RESULTS.md`` (``make bench``).

A benchmark that fails or misses its goal (several exit non-zero then) does not stop the others; the summary at
the end names each command with its exit status and time, and the exit status is 1 when any of them was non-zero.

The dashboard-queries benchmark loads ``--rows`` raw rows into PostgreSQL (default 1,000,000: a few minutes; the
recorded figures use 10,000,000) and keeps that database under ``--db`` for the dashboard load benchmark, which
reads it; it is dropped at the end.

    .venv/bin/python benchmarks/run_all.py                      # what `make bench` runs
    .venv/bin/python benchmarks/run_all.py --rows 10000000      # `make bench BENCH_ROWS=10000000`
    .venv/bin/python benchmarks/run_all.py --only ingest queries
    .venv/bin/python benchmarks/run_all.py --quick              # smoke run at toy sizes, RESULTS.md untouched
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("PULSEGATE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


#: ``--quick``: every benchmark at a toy size, to prove the chain runs (figures meaningless; nothing written).
QUICK = {
    "emulator_throughput": ["--seconds", "1"],
    "import_time": ["--runs", "5"],
    "overhead": ["--rounds", "1", "--calls-c1", "20", "--calls-c32", "64", "--warmup", "20"],
    "ingest": ["--rows", "5000"],
    "outage": ["--rounds", "1", "--calls-c1", "50", "--calls-high", "100", "--warmup", "20"],
    "uuid_order": ["--rows", "20000"],
    "dashboard_load": ["--repeats", "1"],
    "dashboard_idle": ["--connected", "15", "--settle", "10", "--window", "20"],
    "limit_tuning": ["--calls", "65", "--pressure-s", "5"],
}


def commands(rows: int, db: str, quick: bool = False) -> list[tuple[str, list[str]]]:
    url = PG_SERVER.rsplit("/", 1)[0] + f"/{db}"
    listed = [
        ("emulator_throughput", ["emulator_throughput.py"]),
        ("import_time", ["import_time.py"]),
        ("limiter_overhead", ["limiter_overhead.py"]),
        ("redis_limiter", ["redis_limiter.py"]),
        ("limit_tuning", ["limit_tuning.py"]),
        ("overhead", ["overhead.py"]),
        ("ingest", ["ingest.py"]),
        ("outage", ["outage.py"]),
        ("uuid_order", ["uuid_order.py"]),
        ("queries", ["queries.py", "--rows", str(rows), "--keep", "--name", db]),
        ("dashboard_load", ["dashboard_load.py", "--url", url]),
        ("dashboard_idle", ["dashboard_idle.py"]),
    ]
    return [(name, [*args, *(QUICK.get(name, []) if quick else [])]) for name, args in listed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="raw rows for queries.py (default 1,000,000)")
    parser.add_argument("--db", default="pulsegate_bench_make", help="database kept for dashboard_load.py")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks (names as in the summary)")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite RESULTS.md (a trial run)")
    parser.add_argument("--quick", action="store_true", help="toy sizes, --rows 20000 and --no-write: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.no_write = True
        args.rows = min(args.rows, 20_000)

    python = sys.executable
    summary: list[tuple[str, int, float]] = []
    try:
        for name, script_args in commands(args.rows, args.db, args.quick):
            if args.only and name not in args.only:
                continue
            command = [python, f"benchmarks/{script_args[0]}", *script_args[1:]]
            if not args.no_write:
                command.append("--write-results")
            print(f"\n=== {name}: {' '.join(command[1:])}  (load average {os.getloadavg()[0]:.2f})", flush=True)
            started = time.monotonic()
            status = subprocess.call(command, cwd=ROOT)
            summary.append((name, status, time.monotonic() - started))
    finally:
        if not args.only or {"queries", "dashboard_load"} & set(args.only):
            subprocess.call([python, "benchmarks/queries.py", "--drop", args.db], cwd=ROOT)

    print("\nbenchmark           exit   seconds")
    for name, status, seconds in summary:
        print(f"{name:<19} {status:>4} {seconds:>9.0f}")
    failed = [name for name, status, _ in summary if status != 0]
    if failed:
        print(f"non-zero exit (failed or missed a goal; see above): {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
