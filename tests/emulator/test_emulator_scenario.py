"""Scenario files: loading TOML/JSON, one-line errors naming file and field, round-trips, the documented example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pulsegate.emulator import EmulatorError, Scenario, ScenarioError, load_scenario, parse_scenario
from pulsegate.emulator.scenario import Fault, KeyPolicy

DOCS = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"


def documented_example() -> str:
    match = re.search(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert match, "docs/emulator.md lost its TOML example"
    return match.group(1)


def test_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(documented_example())
    sc = load_scenario(path)
    assert sc.seed == 42 and sc.latency.kind == "lognormal"
    assert sc.keys["key-tight"] == KeyPolicy("ok", 5, 20000, 15000, 4000, 2.0)
    assert sc.keys["key-revoked"].behaviour == "invalid" and sc.keys["key-revoked"].requests == 1000
    assert sc.policy_for("someone-else") is sc.defaults
    assert [f.kind for f in sc.faults] == ["overloaded", "rate_limit", "truncate_stream"]
    assert sc.faults[1] == Fault(kind="rate_limit", count=3, key="key-tight", retry_after=2)
    assert sc.models.anthropic[0] == {
        "type": "model",
        "id": "claude-sonnet-4-6",
        "display_name": "Claude Sonnet 4.6",
        "created_at": "2026-01-01T00:00:00Z",
    }
    assert parse_scenario(sc.to_dict()) == sc


def test_json_file_and_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"keys": {"a": {"behaviour": "quota"}}, "faults": [{"kind": "reset", "rate": 0.1}]}))
    sc = load_scenario(path)
    assert sc.keys["a"].behaviour == "quota" and sc.faults[0].rate == 0.1
    assert load_scenario(_write(tmp_path, "empty.toml", "")) == Scenario()
    assert parse_scenario(Scenario().to_dict()) == Scenario()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[keys."key-b"]\nrequests = -5\n', 'keys."key-b".requests: expected an integer >= 1, got -5'),
        ("[defaults]\nbehaviour = 'sleepy'\n", "defaults.behaviour: expected one of 'ok', 'invalid', 'quota'"),
        ("[[faults]]\nkind = 'explode'\n", "faults[0].kind: expected one of 'error', 'rate_limit'"),
        ("[[faults]]\nkind = 'reset'\n[[faults]]\nrate = 0.5\n", "faults[1].kind: expected one of"),
        ("[[faults]]\nkind = 'reset'\nrate = 2\n", "faults[0].rate: expected a number between 0 and 1, got 2"),
        ("[[faults]]\nkind = 'error'\n", "faults[0].status: expected an HTTP status for kind 'error' (required)"),
        ("[[faults]]\nkind = 'error'\nstatus = 418\n", "faults[0].status: expected one of 400, 401"),
        ("[[faults]]\nkind = 'stall'\n", "faults[0].seconds: expected a number > 0 for kind 'stall'"),
        ("[[faults]]\nkind = 'reset'\nroute = 'chat'\n", "faults[0].route: expected a route name like"),
        (
            "[latency]\nkind = 'uniform'\nmin_ms = 5\nmax_ms = 1\n",
            "latency.max_ms: expected a number >= latency.min_ms",
        ),
        ("[latency]\nms = 'fast'\n", "latency.ms: expected a number, got 'fast'"),
        ("sed = 1\n", "sed: expected one of the known fields seed, clock"),
        ("keys = 3\n", "keys: expected a table of key value -> policy, got 3"),
        ("clock = 'wall'\n", "clock: expected one of 'real', 'manual'"),
        ("[reply]\ntext = '  '\n", "reply.text: expected a non-empty string"),
        ("[models]\nanthropic = [{ name = 'x' }]\n", "models.anthropic[0].name: expected one of the known fields"),
        ("[context_window]\nopenai = 0\n", "context_window.openai: expected an integer >= 1, got 0"),
    ],
)
def test_errors_name_file_field_and_expectation(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text_of_error = str(info.value)
    assert text_of_error.startswith(f"{path}: ")
    assert message in text_of_error
    assert "\n" not in text_of_error
    assert info.value.field == message.split(":")[0]
    assert isinstance(info.value, EmulatorError)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"bad\.toml: invalid TOML: "):
        load_scenario(_write(tmp_path, "bad.toml", "seed = = 1"))
    with pytest.raises(ScenarioError, match=r"bad\.json: invalid JSON: "):
        load_scenario(_write(tmp_path, "bad.json", "{"))
    with pytest.raises(ScenarioError, match=r"s\.yaml: unsupported scenario file type '\.yaml'"):
        load_scenario(_write(tmp_path, "s.yaml", "seed: 1"))
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match=r"list\.json: \(top level\): expected a table/object"):
        load_scenario(_write(tmp_path, "list.json", "[]"))
