"""The dependency arrows point one way (import-linter's contracts in pyproject.toml), core exports what it lists, and
the benchmarks stand apart from the tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_import_contracts_hold() -> None:
    """pyproject.toml's import-linter contracts (package boundaries, core's layers, service below CLI) — the same
    check ``make test`` runs first, here so a plain ``pytest`` sees a broken arrow too."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_benchmarks_import_nothing_from_the_tests() -> None:
    """What both need (browser flags, the TCP proxy, synthetic rows) lives in benchmarks/support/."""
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").rglob("*.py") if "tests" in _imported_top_names(p)
    ]
    assert offenders == []
