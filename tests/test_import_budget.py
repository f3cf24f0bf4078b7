"""``from pulsegate import AIClient`` stays light: no dashboard-only libraries in an app that only calls models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_ONLY = ("pandas", "plotly", "streamlit")


def test_importing_the_client_loads_no_dashboard_libraries(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import pulsegate\n"
        "from pulsegate import AIClient\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {DASHBOARD_ONLY!r})\n"
        "print(json.dumps({'pulsegate': pulsegate.__file__, 'client': AIClient.__module__, 'loaded': loaded}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "pulsegate": str(ROOT / "src" / "pulsegate" / "__init__.py"),
        "client": "pulsegate.core.client",
        "loaded": [],
    }


#: What the dashboard and the worker's API import to read the store and to ask for operator actions.
DASHBOARD_READS = (
    "pulsegate.dashboard.data",
    "pulsegate.core.ops.control",
    "pulsegate.core.ops.health_report",
    "pulsegate.core.ops.probe_requests",
    "pulsegate.core.queries.alerts",
    "pulsegate.core.queries.limits",
    "pulsegate.core.queries.attempt_export",
)


def test_the_dashboards_reads_load_no_provider_sdk(tmp_path: Path) -> None:
    """The dashboard asks the worker to run probes; it never calls a provider, so it never pays for loading the
    SDKs (tens of MiB and a second per process, seen as a slower first draw of the Overview)."""
    code = (
        "import json, sys, importlib\n"
        f"for name in {DASHBOARD_READS!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'openai'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
