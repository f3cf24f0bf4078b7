"""The lock files and the environments built from them (used by the Makefile and tests/test_lock.py).

``requirements.lock`` pins every package ``make install`` puts into ``.venv`` — the project's dependencies with the
test extras, every transitive dependency, and pip, setuptools and wheel — each to one version with the hashes of
its files. ``requirements-sdk-floor.lock`` pins the lowest ``anthropic`` and ``openai`` that ``pyproject.toml``
admits; ``make test`` runs the SDK-facing tests on them as well.

    python .ci/lockfile.py sync requirements.lock   # remove what the lock does not list, then check
    python .ci/lockfile.py check requirements.lock  # exit 1, naming each difference, unless installed == lock
    python .ci/lockfile.py floor-pins               # "anthropic==2.14.0" … from pyproject's lower bounds
    python .ci/lockfile.py raise-lower-bounds requirements.lock  # each ">=" in pyproject to the locked version

Only the standard library and ``packaging`` (pinned in the lock itself) are used.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
#: The provider SDKs whose lowest admitted version is tested too: their exception and stream shapes change within
#: a major (anthropic 2.17 began wrapping a stream's read timeout in APITimeoutError).
SDK_FLOOR = ("anthropic", "openai")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")
#: A dependency string with a lower bound, as pyproject.toml writes it: ``uvicorn[standard]>=0.55.0,<0.56``.
_LOWER_BOUND = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?P<extras>\[[^\]]*\])?>=(?P<version>[^,;\s]+)(?P<rest>.*)"
)


@dataclass(frozen=True, slots=True)
class Pin:
    """One ``name==version`` line of a lock file, with its environment marker and hashes."""

    name: str
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self) -> bool:
        """Whether this interpreter and platform install it (the marker, if any, holds here)."""
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Pin]:
    """Every pin of a hash-pinned requirements file, in file order; anything but ``name==version`` is an error."""
    pins: list[Pin] = []
    logical = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    for number, line in enumerate(logical.splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        spec = _HASH.sub("", text).strip()
        requirement = Requirement(spec)
        versions = [s.version for s in requirement.specifier if s.operator == "=="]
        if len(requirement.specifier) != 1 or not versions:
            raise ValueError(f"{path.name}: entry {number} ({spec!r}) is not pinned to one version with ==")
        pins.append(
            Pin(
                canonicalize_name(requirement.name),
                Version(versions[0]),
                requirement.marker,
                tuple(_HASH.findall(text)),
            )
        )
    return pins


def locked_versions(path: Path) -> dict[str, Version]:
    """{canonical name: version} of the pins that apply on this interpreter and platform."""
    return {pin.name: pin.version for pin in read_lock(path) if pin.applies()}


def project_name() -> str:
    return canonicalize_name(tomllib.loads(PYPROJECT.read_text())["project"]["name"])


def installed_versions() -> dict[str, Version]:
    """{canonical name: version} of what this interpreter's environment holds, the project itself left out."""
    own = project_name()
    found = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in importlib.metadata.distributions()}
    found.pop(own, None)
    return found


def differences(locked: dict[str, Version], installed: dict[str, Version]) -> list[str]:
    """One line per package that is missing, extra, or at another version than the lock says."""
    lines: list[str] = []
    for name in sorted(locked.keys() | installed.keys()):
        want, have = locked.get(name), installed.get(name)
        if have is None:
            lines.append(f"missing: {name}=={want} (in the lock, not installed)")
        elif want is None:
            lines.append(f"extra: {name}=={have} (installed, not in the lock)")
        elif want != have:
            lines.append(f"version: {name} is {have}, the lock says {want}")
    return lines


def floor_pins() -> list[str]:
    """``name==lower bound`` for each SDK in :data:`SDK_FLOOR`, read from pyproject's dependencies."""
    lowest: dict[str, str] = {}
    for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name in SDK_FLOOR:
            bounds = [s.version for s in requirement.specifier if s.operator == ">="]
            if len(bounds) != 1:
                raise ValueError(f"pyproject.toml: {line!r} needs one lower bound (>=) to test the floor on")
            lowest[name] = bounds[0]
    missing = [name for name in SDK_FLOOR if name not in lowest]
    if missing:
        raise ValueError(f"pyproject.toml does not depend on {', '.join(missing)}")
    return [f"{name}=={lowest[name]}" for name in SDK_FLOOR]


def direct_dependencies(text: str) -> list[str]:
    """The dependency strings of pyproject's ``[project]``: the dependencies and every optional group."""
    project = tomllib.loads(text)["project"]
    groups = project.get("optional-dependencies", {}).values()
    return [*project["dependencies"], *(line for group in groups for line in group)]


def raise_lower_bounds(text: str, locked: dict[str, Version]) -> tuple[str, list[str]]:
    """pyproject's text with each dependency's lower bound set to its locked version (the SDKs keep their floor),
    and one line per bound that moved. Only ``[project]`` dependency strings are touched, never the build system."""
    moved: list[str] = []
    for line in direct_dependencies(text):
        match = _LOWER_BOUND.fullmatch(line)
        if match is None:
            continue
        name = canonicalize_name(match["name"])
        if name in SDK_FLOOR or name not in locked or Version(match["version"]) == locked[name]:
            continue
        raised = f"{match['name']}{match['extras'] or ''}>={locked[name]}{match['rest']}"
        text = text.replace(f'"{line}"', f'"{raised}"')
        moved.append(f"{match['name']}: >={match['version']} -> >={locked[name]}")
    return text, moved


def sync(path: Path) -> list[str]:
    """Uninstall what the lock does not list (left over from an older lock), then return the differences left."""
    locked = locked_versions(path)
    extra = sorted(installed_versions().keys() - locked.keys())
    if extra:
        print(f"removing what {path.name} no longer lists: {', '.join(extra)}")
        command = [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", *extra]
        subprocess.run(command, check=True)  # noqa: S603 — this interpreter's pip, names it reported itself
    return differences(locked, installed_versions())


def main(argv: list[str]) -> int:
    if argv[:1] == ["floor-pins"] and len(argv) == 1:
        print("\n".join(floor_pins()))
        return 0
    if len(argv) == 2 and argv[0] == "raise-lower-bounds":
        text, moved = raise_lower_bounds(PYPROJECT.read_text(), locked_versions(Path(argv[1])))
        PYPROJECT.write_text(text)
        print("\n".join(f"pyproject.toml lower bound {line}" for line in moved) or "pyproject.toml: lower bounds kept")
        return 0
    if len(argv) == 2 and argv[0] in ("sync", "check"):
        path = Path(argv[1])
        problems = sync(path) if argv[0] == "sync" else differences(locked_versions(path), installed_versions())
        for line in problems:
            print(f"{sys.prefix} differs from {path.name}: {line}", file=sys.stderr)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
