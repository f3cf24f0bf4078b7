"""Import time: ``from pulsegate import AIClient`` vs the two SDKs it wraps (issue 3, "Performance").

Each measurement is a fresh interpreter (``python -c``) that times the import statement itself with
``time.perf_counter`` (interpreter start-up excluded); runs of the two statements alternate and each figure is the
median of ``--runs`` runs. One extra ``python -X importtime`` run per statement lists which top-level packages
``core`` pulls in beyond the SDKs, and what each costs. Goal: core <= SDKs + 0.3 s, and no pandas / plotly /
streamlit in ``sys.modules`` (``tests/test_import_budget.py`` asserts the latter on every test run).

    .venv/bin/python benchmarks/import_time.py                    # ~1 min on a slow 2-vCPU VM
    .venv/bin/python benchmarks/import_time.py --write-results    # also updates RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from results import write_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = "import-time"
SDKS = "import anthropic, openai"
CORE = "from pulsegate import AIClient"
FORBIDDEN = ("pandas", "plotly", "streamlit")
BUDGET_S = 0.3

TIMER = """
import json, sys, time
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(json.dumps({{"s": elapsed, "modules": sorted({{m.split(".")[0] for m in sys.modules}})}}))
"""


def environment(cwd: str) -> dict[str, str]:
    """A clean interpreter whose bytecode cache lives in the temp dir: the warm-up run compiles SDKs and core alike,
    then every timed run reads compiled ``.pyc`` files, as an installed application does (the repo is not written).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}  # e.g. PYTHONDONTWRITEBYTECODE
    env["PYTHONPYCACHEPREFIX"] = str(Path(cwd) / "pycache")
    return env


def timed(statement: str, cwd: str) -> tuple[float, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(statement=statement)],
        cwd=cwd,
        env=environment(cwd),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return float(data["s"]), list(data["modules"])


def packages_by_cost(statement: str, cwd: str) -> dict[str, tuple[float, str]]:
    """Top-level package → (cumulative seconds of its imports made from outside it, the first ``core`` module that
    pulled it in), from one ``python -X importtime`` run.
    """
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import gc; gc.disable(); {statement}"],  # no GC pauses
        cwd=cwd,
        env=environment(cwd),
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    entries: list[tuple[int, str, float]] = []  # (depth, module, cumulative s), children listed before parents
    for line in err.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append((depth, name.strip(), int(parts[1]) / 1e6))
    costs: dict[str, float] = defaultdict(float)
    via: dict[str, str] = {}
    parents: list[tuple[int, str]] = []
    for depth, module, cumulative in reversed(entries):  # parents first
        while parents and parents[-1][0] >= depth:
            parents.pop()
        package = module.split(".")[0]
        if not parents or parents[-1][1].split(".")[0] != package:
            costs[package] += cumulative
            importers = [m for _, m in parents if m.split(".")[0] == "pulsegate"]
            via.setdefault(package, importers[-1] if importers else "")
        parents.append((depth, module))
    return {package: (cost, via.get(package, "")) for package, cost in costs.items()}


def median_costs(statement: str, cwd: str, runs: int) -> dict[str, tuple[float, str]]:
    samples = [packages_by_cost(statement, cwd) for _ in range(runs)]
    return {
        package: (statistics.median(s.get(package, (0.0, ""))[0] for s in samples), via)
        for package, (_, via) in samples[0].items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per statement (default 7, min 5)")
    parser.add_argument("--write-results", action="store_true", help="rewrite its section of benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    runs = max(5, args.runs)

    with tempfile.TemporaryDirectory(prefix="pulsegate-import-") as cwd:
        timed(SDKS, cwd)  # warm the OS file cache and the .pyc files
        timed(CORE, cwd)
        times: dict[str, list[float]] = {SDKS: [], CORE: []}
        modules: dict[str, list[str]] = {}
        for _ in range(runs):
            for statement in (SDKS, CORE):
                elapsed, loaded = timed(statement, cwd)
                times[statement].append(elapsed)
                modules[statement] = loaded
        sdk_costs = median_costs(SDKS, cwd, 3)
        core_costs = median_costs(CORE, cwd, 3)

    sdk_s, core_s = statistics.median(times[SDKS]), statistics.median(times[CORE])
    forbidden = [name for name in FORBIDDEN if name in modules[CORE]]
    extra = sorted(set(modules[CORE]) - set(modules[SDKS]))
    extra_costs = sorted(
        ((core_costs[name][0], name, core_costs[name][1]) for name in extra if name in core_costs and name != "core"),
        reverse=True,
    )
    time_met = core_s <= sdk_s + BUDGET_S
    lines = [
        "| statement | median s | min–max s |",
        "|---|---:|---:|",
        *(
            f"| `{statement}` | {statistics.median(values):.3f} | {min(values):.3f}–{max(values):.3f} |"
            for statement, values in times.items()
        ),
        "",
        "| goal | measured | target | result |",
        "|---|---:|---:|---|",
        f"| `{CORE}` import time | {core_s:.3f} s = SDKs {sdk_s:.3f} s {core_s - sdk_s:+.3f} s | ≤ SDKs + "
        f"{BUDGET_S} s | {'PASS' if time_met else 'MISS'} |",
        f"| no {', '.join(FORBIDDEN)} in `sys.modules` | {', '.join(forbidden) or 'none loaded'} | none | "
        f"{'MISS' if forbidden else 'PASS'} |",
        "",
        "Packages `core` imports beyond the SDKs: cumulative import time (median of 3 `-X importtime` runs with the "
        "garbage collector off, so that no collection pause lands on whichever module runs then; the SDKs themselves "
        f"{sum(sdk_costs.get(n, (0.0, ''))[0] for n in ('anthropic', 'openai')):.3f} s there) and the `core` module "
        "that first pulls each in (packages under 5 ms omitted):",
        "",
        *(f"- `{name}` {cost * 1000:.0f} ms, via `{via}`" for cost, name, via in extra_costs if cost >= 0.005),
    ]
    print("\n".join(lines))
    if args.write_results:
        shown = " ".join(sys.argv[1:] if argv is None else argv)
        cpu = "unknown CPU"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        body = (
            "## Import time\n\n"
            f"Command (run {time.strftime('%Y-%m-%d')}): `.venv/bin/python benchmarks/import_time.py {shown}`\n\n"
            f"Machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}. Each figure: median of "
            f"{runs} fresh interpreters per statement (alternating), timing the statement alone (start-up excluded), "
            "with compiled bytecode for everything (`PYTHONPYCACHEPREFIX` in a temp dir, warmed once).\n\n"
            + "\n".join(lines)
        )
        print(f"wrote {write_section(SECTION, body)}")
    return 0 if time_met and not forbidden else 3


if __name__ == "__main__":
    sys.exit(main())
