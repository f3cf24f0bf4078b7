"""The wheel, installed as a user installs it: built from this checkout, installed offline from the wheelhouse that
``make`` fills from requirements.lock into a fresh venv, beside an application that has its own ``core`` and
``jobs`` packages. The installed ``pulsegate`` command then migrates a store, shows its settings, serves the
emulator and the dashboard, and the application makes one call through it — so the migrations, the price table,
the emulator and the dashboard's app file are all in the wheel, and the application's own packages still win."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.processes import free_port, wait_http

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: What building the wheel reads: the project file, the README, the package's link folder and the folders it maps.
SOURCES = ("pyproject.toml", "README.md", "src", "core", "jobs", "dashboard", "emulator", "migrations")
KEY = "sk-ant-wheel-test-" + "w" * 24 + "k9k9"

#: The application beside the library: its own ``core`` and ``jobs``, then one call through Pulsegate.
APP = """
import json, os, sys
import core, jobs
from pulsegate import AIClient, ModelConfig

client = AIClient.from_env(heartbeat=False)
response = client.generate_response_sync(
    ModelConfig(model="claude-sonnet-4-6", max_tokens=8), [{"role": "user", "content": "hi"}]
)
client.close()
print(json.dumps({
    "core": core.WHOSE, "jobs": jobs.WHOSE, "text": response.text, "key": response.key_label,
    "pulsegate_from": sys.modules["pulsegate"].__file__,
    "bare": sorted(n for n in sys.modules if n.split(".")[0] in ("emulator", "dashboard", "migrations")),
}))
"""


def _wheelhouse() -> Path:
    configured = os.environ.get("PULSEGATE_TEST_WHEELHOUSE")
    path = Path(configured) if configured else ROOT / ".venv" / "wheelhouse"
    if not (path / ".filled").exists():
        message = f"no wheelhouse at {path}: `make test` fills it from requirements.lock"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(reason=message)
    return path


def _offline_env(**extra: str) -> dict[str, str]:
    """No pip configuration, no index, none of the developer's settings: only what the test names."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")
    return {**{k: v for k, v in os.environ.items() if k in keep}, "PIP_CONFIG_FILE": os.devnull, **extra}


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv}: {result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@contextmanager
def _serving(argv: list[str], cwd: Path, env: dict[str, str], health_url: str) -> Iterator[None]:
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_http(health_url, timeout=60, process=process)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout (the build writes beside its sources)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        target = source / name
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, target)
    dist = tmp_path_factory.mktemp("dist")
    argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    _run([*argv, "-w", str(dist), str(source)], cwd=source, env=_offline_env())
    (built,) = dist.glob("pulsegate-*.whl")
    return built


def test_the_wheel_holds_one_package_with_its_data_files(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"pulsegate", wheel.name.split("-py3")[0] + ".dist-info"}
    for shipped in (
        "pulsegate/__init__.py",
        "pulsegate/core/client.py",
        "pulsegate/core/data/prices.toml",
        "pulsegate/migrations/env.py",
        "pulsegate/migrations/script.py.mako",
        "pulsegate/migrations/versions/0001_initial_schema.py",
        "pulsegate/dashboard/server.py",
        "pulsegate/dashboard/app.py",
        "pulsegate/emulator/__init__.py",
        "pulsegate/jobs/cli/commands.py",
    ):
        assert shipped in names, shipped
    assert not [name for name in names if "__pycache__" in name or name.startswith("pulsegate/tests")]
    entry_points = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/entry_points.txt").decode()
    assert "pulsegate = pulsegate.jobs.cli.commands:main" in entry_points


def test_installed_offline_beside_an_app_with_its_own_core_and_jobs(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=_offline_env())
    python, pulsegate = venv / "bin" / "python", venv / "bin" / "pulsegate"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--find-links", str(_wheelhouse())]
    _run([*install, str(wheel)], cwd=tmp_path, env=_offline_env(), timeout=600)

    app = tmp_path / "app"
    for package in ("core", "jobs"):
        (app / package).mkdir(parents=True)
        (app / package / "__init__.py").write_text(f'WHOSE = "the app\'s own {package}"\n')
    (app / "main.py").write_text(APP)
    emulator_port, dashboard_port = free_port(), free_port()
    env = _offline_env(
        DATABASE_URL=f"sqlite:///{app / 'store.db'}",
        ANTHROPIC_API_KEY=KEY,
        ANTHROPIC_BASE_URL=f"http://127.0.0.1:{emulator_port}",
    )

    assert "store ready" in _run([str(pulsegate), "migrate"], cwd=app, env=env)
    shown = _run([str(pulsegate), "settings"], cwd=app, env=env)
    assert KEY not in shown and "'label': 'Primary', 'masked': 'sk-ant-…k9k9'" in shown

    emulator = [str(pulsegate), "emulator", "--port", str(emulator_port)]
    with _serving(emulator, app, env, f"http://127.0.0.1:{emulator_port}/_emulator/stats"):
        report = json.loads(_run([str(python), "main.py"], cwd=app, env=env).strip().splitlines()[-1])
    assert report["core"] == "the app's own core" and report["jobs"] == "the app's own jobs"
    assert report["text"] and report["key"] == "Primary" and report["bare"] == []
    assert Path(report["pulsegate_from"]).is_relative_to(venv)
    with sqlite3.connect(app / "store.db") as db:
        assert db.execute("SELECT provider, outcome, is_final FROM api_usage_metrics").fetchall() == [
            ("anthropic", "success", 1)
        ]

    dashboard = [str(pulsegate), "dashboard", "--port", str(dashboard_port)]
    with _serving(dashboard, app, env, f"http://127.0.0.1:{dashboard_port}/_stcore/health"):
        pass  # the app file shipped, and Streamlit serves it from site-packages
