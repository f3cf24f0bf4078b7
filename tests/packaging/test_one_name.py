"""The library claims one import name, ``pulsegate``: the repository's folders (``core``, ``jobs``, ``dashboard``,
``emulator``, ``migrations``) are reachable only under it, so an application with its own ``core`` or ``jobs``
package keeps it, and no module of ours is ever loaded twice under two names (two error enums, and an ``except``
that misses)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from pulsegate.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("core", "jobs", "dashboard", "emulator", "migrations")

#: Run in a fresh interpreter outside the checkout: one call through the client, then a census of what is loaded.
CALL_THEN_CENSUS = """
import json, sys
from pathlib import Path

from pulsegate import AIClient, ModelConfig
from pulsegate.core.settings import load_settings

settings = load_settings(
    {{"ANTHROPIC_BASE_URL": {url!r}, "ANTHROPIC_API_KEY": "sk-ant-one-name-test-xxxxxxxxxxxxxxxx",
     "DATABASE_URL": "sqlite:///" + str(Path.cwd() / "store.db")}},
    env_file=None,
)
client = AIClient.from_env(settings=settings, heartbeat=False)
response = client.generate_response_sync(
    ModelConfig(model="claude-sonnet-4-6", max_tokens=8), [{{"role": "user", "content": "hi"}}]
)
client.close()
ours = {{}}
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None)
    if path and any(Path(path).resolve().is_relative_to(folder) for folder in {folders!r}):
        ours.setdefault(str(Path(path).resolve()), []).append(name)
print(json.dumps({{"text": response.text, "ours": ours}}))
"""


def _census(tmp_path: Path, url: str) -> dict:
    """Migrates a store in ``tmp_path``, runs the call there, and returns what it loaded."""
    from pulsegate import migrations

    migrations.upgrade(f"sqlite:///{tmp_path / 'store.db'}")
    folders = [str(ROOT / name) for name in (*FOLDERS, "src")]
    code = CALL_THEN_CENSUS.format(url=url, folders=folders)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_after_a_call_every_module_of_ours_is_loaded_once_under_pulsegate(tmp_path: Path) -> None:
    with EmulatorServer() as emulator:
        census = _census(tmp_path, emulator.url)
    assert census["text"]
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT outcome, is_final FROM api_usage_metrics").fetchall() == [("success", 1)]
    names = [name for names in census["ours"].values() for name in names]
    assert "pulsegate" in names and "pulsegate.core.client" in names and "pulsegate.core.call.runner" in names
    assert [n for n in names if not (n == "pulsegate" or n.startswith("pulsegate."))] == []
    assert {path: found for path, found in census["ours"].items() if len(found) > 1} == {}


def test_the_bare_folder_names_are_not_importable_from_the_install(tmp_path: Path) -> None:
    code = (
        "import importlib.util, json\n"
        f"print(json.dumps({{n: importlib.util.find_spec(n) is not None for n in {FOLDERS!r}}}))\n"
        "import pulsegate, pulsegate.core, pulsegate.jobs, pulsegate.dashboard, pulsegate.emulator, "
        "pulsegate.migrations\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict.fromkeys(FOLDERS, False)


def test_pulsegate_exports_exactly_the_public_surface() -> None:
    import pulsegate

    assert sorted(pulsegate.__all__) == sorted(pulsegate._EXPORTS)
    assert all(getattr(pulsegate, name).__name__ == name for name in pulsegate.__all__)
    assert "Priority" in pulsegate.__all__ and "AIClient" in pulsegate.__all__
    assert pulsegate.Priority.USER_FACING == 5
