"""Which provider SDKs a test run imports, and a guard that the SDK-floor run really got the floor versions.

``make test`` runs the SDK-facing tests a second time with the lowest admitted ``anthropic`` and ``openai`` put
first on ``PYTHONPATH`` and ``PULSEGATE_TEST_SDK_FLOOR`` naming their lock file. Were that overlay ever missed
(a path typo, a changed layout), the run would quietly test the locked SDKs again and claim the floor; the guard
stops the run instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDKS = ("anthropic", "openai")


def imported_versions() -> dict[str, str]:
    """{SDK: the version of the copy that ``import`` finds first}."""
    versions: dict[str, str] = {}
    for name in SDKS:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"{name} is not installed"
        package_dir = Path(spec.origin).parent
        found = [d for d in importlib.metadata.distributions(path=[str(package_dir.parent)]) if d.name == name]
        versions[name] = found[0].version if found else "unknown"
    return versions


def report_header() -> str:
    return "provider SDKs: " + ", ".join(f"{name} {version}" for name, version in imported_versions().items())


def floor_problem() -> str | None:
    """With ``PULSEGATE_TEST_SDK_FLOOR`` set: why the imported SDKs are not the pinned floor, else ``None``."""
    lock = os.environ.get("PULSEGATE_TEST_SDK_FLOOR")
    if not lock:
        return None
    pinned: dict[str, str] = {}
    for line in (ROOT / lock).read_text().splitlines():
        name, sep, version = line.strip().rstrip("\\").strip().partition("==")
        if sep and name in SDKS:
            pinned[name] = version
    imported = imported_versions()
    if pinned != imported:
        return f"the SDK-floor run imports {imported}, but {lock} pins {pinned}: is the floor on PYTHONPATH?"
    return None
