"""``pulsegate probe`` as a user runs it: a real process against the emulator, a real SQLite store, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulsegate.core.clock import SYSTEM_CLOCK
from pulsegate.core.errors import ErrorClass
from pulsegate.core.ops.heartbeat import instance_heartbeat
from pulsegate.core.provider import Provider
from pulsegate.core.settings import load_settings
from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import api_usage_metrics, control_commands
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS, requests_by_key
from tests.support.processes import run_cli

HEADER = re.compile(r"^provider\s+key\s+model\s+result\s+status\s+latency\s+tokens\s+cost\s+detail$")


def _env(emu: EmulatorServer, anthropic: int = 2, openai: int = 1, **extra: str) -> dict[str, str]:
    env = {"ANTHROPIC_BASE_URL": emu.url, "OPENAI_BASE_URL": emu.openai_base_url, **extra}
    for index, key in enumerate(ANTHROPIC_KEYS[:anthropic]):
        env["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    for index, key in enumerate(OPENAI_KEYS[:openai]):
        env["OPENAI_API_KEY" if index == 0 else f"OPENAI_API_KEY_{index + 1}"] = key
    return env


def _cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    assert run_cli(["migrate"], cwd=tmp_path).returncode == 0
    return tmp_path


def _probe_rows(workdir: Path) -> list[dict[str, object]]:
    engine = sa.create_engine(f"sqlite:///{workdir / 'data' / 'pulsegate.db'}")
    try:
        with engine.connect() as connection:
            query = sa.select(api_usage_metrics).order_by(api_usage_metrics.c.provider, api_usage_metrics.c.key_label)
            return [dict(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()


def test_all_keys_pass_prints_the_table_records_probe_rows_and_exits_0(emu: EmulatorServer, workdir: Path) -> None:
    result = run_cli(["probe"], cwd=workdir, env=_env(emu))

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert HEADER.match(lines[0]), lines[0]
    cells = [_cells(line) for line in lines[1:4]]
    assert [c[:5] for c in cells] == [
        ["anthropic", "Primary", "claude-haiku-4-5", "ok", "200"],
        ["anthropic", "Backup 1", "claude-haiku-4-5", "ok", "200"],
        ["openai", "Primary", "gpt-5-nano", "ok", "200"],
    ]
    assert [c[6:] for c in cells] == [
        ["1+1", "$0.000006", "ok"],
        ["1+1", "$0.000006", "ok"],
        ["1+1", "$0.00000045", "ok"],
    ]
    assert all(re.fullmatch(r"\d+ ms", c[5]) for c in cells)
    assert lines[4:] == ["3/3 passed"]
    assert result.stderr == ""
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {200: 1}, ANTHROPIC_KEYS[1]: {200: 1}}
    stored = _probe_rows(workdir)
    assert [(r["source"], r["provider"], r["key_label"], r["model"], r["outcome"]) for r in stored] == [
        ("probe", "anthropic", "Backup 1", "claude-haiku-4-5", "success"),
        ("probe", "anthropic", "Primary", "claude-haiku-4-5", "success"),
        ("probe", "openai", "Primary", "gpt-5-nano", "success"),
    ]
    assert [(r["input_tokens"], r["output_tokens"], r["http_status"]) for r in stored] == [(1, 1, 200)] * 3


def test_a_failing_key_exits_1_and_the_output_names_no_secret(emu: EmulatorServer, workdir: Path) -> None:
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[1]: {"behaviour": "invalid"}}})

    result = run_cli(["probe", "--provider", "anthropic"], cwd=workdir, env=_env(emu))

    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert [_cells(line)[:5] for line in lines[1:3]] == [
        ["anthropic", "Primary", "claude-haiku-4-5", "ok", "200"],
        ["anthropic", "Backup 1", "claude-haiku-4-5", "FAIL", "401"],
    ]
    assert _cells(lines[2])[6:] == ["0+0", "$0", "anthropic key 'Backup 1': 401 auth: invalid x-api-key"]
    assert lines[3:] == ["1/2 passed"]
    for secret in ANTHROPIC_KEYS + OPENAI_KEYS:
        assert secret not in result.stdout + result.stderr
    assert [(r["key_label"], r["error_class"]) for r in _probe_rows(workdir)] == [
        ("Backup 1", "auth"),
        ("Primary", None),
    ]


def test_one_key_on_another_model_as_json(emu: EmulatorServer, workdir: Path) -> None:
    result = run_cli(
        ["probe", "--provider", "openai", "--key", "Primary", "--model", "gpt-4.1-nano", "--json"],
        cwd=workdir,
        env=_env(emu),
    )

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["commands"] == []
    (probe,) = document["results"]
    assert {k: probe[k] for k in ("provider", "key_label", "model", "ok", "http_status", "input_tokens")} == {
        "provider": "openai",
        "key_label": "Primary",
        "model": "gpt-4.1-nano",
        "ok": True,
        "http_status": 200,
        "input_tokens": 1,
    }
    assert requests_by_key(emu, "openai.chat_completions") == {OPENAI_KEYS[0]: {200: 1}}
    assert requests_by_key(emu) == {}


def test_a_probe_that_passes_returns_a_cooling_key_to_service(emu: EmulatorServer, workdir: Path) -> None:
    """An application instance reports Primary cooling down; the CLI's probe finds it working and resets it."""
    url = f"sqlite:///{workdir / 'data' / 'pulsegate.db'}"
    engine = create_store_engine(url)
    from pulsegate import AIClient

    app = AIClient(load_settings(_env(emu), env_file=None), instance_id="app-1", heartbeat=False)
    pool = app.pools[Provider.ANTHROPIC]
    pool.state(pool.by_label("Primary")).record_failure(  # type: ignore[arg-type]
        SYSTEM_CLOCK.monotonic(), ErrorClass.RATE_LIMITED, retry_after=600.0
    )
    heartbeat = instance_heartbeat(app.instance, engine, interval_s=30.0)  # 30 s: still live while the CLI runs
    heartbeat.beat()

    result = run_cli(["probe", "--provider", "anthropic", "--key", "Primary"], cwd=workdir, env=_env(emu))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "anthropic key 'Primary': reset_key issued (command 1)"
    with engine.connect() as connection:
        commands = connection.execute(sa.select(control_commands)).mappings().all()
    assert [(c["command"], c["provider"], c["key_label"], c["requested_by"]) for c in commands] == [
        ("reset_key", "anthropic", "Primary", "probe")
    ]
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "anthropic", "message"),
    [
        (
            ["--key", "Backup 7"],
            2,
            "pulsegate probe: key: no key labelled 'Backup 7' is configured "
            "(keys: anthropic 'Primary', anthropic 'Backup 1', openai 'Primary')\n",
        ),
        (
            ["--provider", "anthropic", "--key", "Backup 7"],
            1,
            "pulsegate probe: key: no anthropic key labelled 'Backup 7' is configured (keys: anthropic 'Primary')\n",
        ),
        (
            ["--provider", "anthropic"],
            0,
            "pulsegate probe: provider: no anthropic keys are configured (set ANTHROPIC_API_KEY)\n",
        ),
        (["--model", ""], 1, "pulsegate probe: model: expected a non-empty string, got ''\n"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    emu: EmulatorServer, workdir: Path, args: list[str], anthropic: int, message: str
) -> None:
    result = run_cli(["probe", *args], cwd=workdir, env=_env(emu, anthropic=anthropic))
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message)
    assert emu.stats()["total"] == 0


def test_no_keys_and_unknown_provider_exit_2(emu: EmulatorServer, workdir: Path) -> None:
    result = run_cli(["probe"], cwd=workdir, env={})
    assert (result.returncode, result.stderr) == (
        2,
        "pulsegate probe: no API keys are configured: set ANTHROPIC_API_KEY and/or OPENAI_API_KEY\n",
    )
    result = run_cli(["probe", "--provider", "gemini"], cwd=workdir, env=_env(emu))
    assert result.returncode == 2
    assert "argument --provider: invalid choice: 'gemini'" in result.stderr
    assert emu.stats()["total"] == 0
