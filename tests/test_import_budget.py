"""``from core import AIClient`` stays light: no dashboard-only libraries in an application that only calls models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_ONLY = ("pandas", "plotly", "streamlit")


def test_importing_the_client_loads_no_dashboard_libraries(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import core\n"
        "from core import AIClient\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {DASHBOARD_ONLY!r})\n"
        "print(json.dumps({'core': core.__file__, 'client': AIClient.__module__, 'loaded': loaded}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"core": str(ROOT / "core" / "__init__.py"), "client": "core.client", "loaded": []}
