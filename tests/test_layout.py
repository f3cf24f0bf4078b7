"""The dependency arrows point one way: dashboard and jobs sit on core; core and emulator import none of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"core", "jobs", "dashboard", "emulator", "migrations"}
ALLOWED = {
    "core": {"core"},
    "emulator": {"emulator"},
    "dashboard": {"core", "dashboard"},
    "jobs": {"core", "jobs", "migrations", "emulator", "dashboard"},
    "migrations": {"core", "migrations"},
}


def _imported_top_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _imports_module(path: Path, module: str) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    return any(name == module or name.startswith(module + ".") for name in names)


def _imported_packages(path: Path) -> set[str]:
    """Which of our packages the file imports."""
    return _imported_top_names(path) & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) - ALLOWED[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}


def test_core_exports_are_listed_once_and_resolve() -> None:
    import core

    assert sorted(core.__all__) == sorted(core._EXPORTS)
    assert all(getattr(core, name).__name__ == name for name in core.__all__)


def test_benchmarks_import_nothing_from_the_tests() -> None:
    """What both need (browser flags, the TCP proxy, synthetic rows) lives in benchmarks/support/."""
    offenders = [
        str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").rglob("*.py") if "tests" in _imported_top_names(p)
    ]
    assert offenders == []


def test_the_service_never_imports_the_command_line() -> None:
    """jobs.cli starts jobs.service (the worker, its API); the arrow points one way."""
    service = (ROOT / "jobs" / "service").rglob("*.py")
    offenders = [str(path.relative_to(ROOT)) for path in service if _imports_module(path, "jobs.cli")]
    assert offenders == []
