"""The ``pulsegate`` command as a user runs it: real processes, exit codes, and messages without tracebacks."""

from __future__ import annotations

import signal
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa

from pulsegate import migrations
from tests.support.processes import BackgroundProcess, free_port, run_cli, wait_http


def test_migrate_creates_the_default_sqlite_store_in_the_working_folder(tmp_path: Path) -> None:
    result = run_cli(["migrate"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    expected = f"store ready: SQLite file ./data/pulsegate.db at revision {migrations.head_revision()}"
    assert result.stdout.strip() == expected
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'pulsegate.db'}")
    try:
        assert "api_usage_metrics" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_bad_settings_give_one_message_and_exit_2(tmp_path: Path) -> None:
    result = run_cli(
        ["migrate"], cwd=tmp_path, env={"ANTHROPIC_RPM": "fifty", "ADMIN_TOKEN": "tiny-secret", "OPENAI_TPM": "x"}
    )
    assert result.returncode == 2
    assert result.stderr == (
        "pulsegate migrate: invalid Pulsegate settings (3 problems in the environment):\n"
        "  - ANTHROPIC_RPM='fifty': expected a positive integer (requests per minute)\n"
        "  - OPENAI_TPM='x': expected a positive integer (tokens per minute)\n"
        "  - ADMIN_TOKEN='…': expected a token of at least 16 characters\n"
    )
    assert "tiny-secret" not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


def test_dotenv_in_the_working_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_RPM=-1\n")
    result = run_cli(["settings"], cwd=tmp_path)
    assert result.returncode == 2
    assert "OPENAI_RPM='-1': expected a positive integer" in result.stderr


def test_unreachable_database_is_one_line_without_password(tmp_path: Path) -> None:
    result = run_cli(["migrate"], cwd=tmp_path, env={"DATABASE_URL": "postgresql://pulse:pw-secret@127.0.0.1:1/pulse"})
    assert result.returncode == 2
    assert result.stderr.startswith("pulsegate migrate: cannot reach PostgreSQL at 127.0.0.1:1, database 'pulse'")
    assert result.stderr.count("\n") == 1
    assert "pw-secret" not in result.stderr and "Traceback" not in result.stderr


def test_settings_shows_keys_masked(tmp_path: Path) -> None:
    key = "sk-ant-api03-" + "Q" * 40 + "zz99"
    result = run_cli(["settings"], cwd=tmp_path, env={"ANTHROPIC_API_KEY": key, "ANTHROPIC_API_KEY_3": key + "x"})
    assert result.returncode == 0
    assert key not in result.stdout
    assert "'label': 'Primary', 'masked': 'sk-ant-…zz99'" in result.stdout
    assert "'label': 'Backup 2', 'masked': 'sk-ant-…z99x'" in result.stdout


def test_emulator_command_serves_the_sdks_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    with BackgroundProcess(["emulator", "--port", str(port)], cwd=tmp_path) as server:
        wait_http(f"http://127.0.0.1:{port}/_emulator/stats", process=server.process)
        client = openai.OpenAI(api_key="test-key", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
        models = client.models.list()
        assert len(models.data) > 0
        client.close()
        assert server.stop(signal.SIGTERM) == 0


def test_emulator_refuses_a_public_address(tmp_path: Path) -> None:
    result = run_cli(["emulator", "--host", "0.0.0.0", "--port", str(free_port())], cwd=tmp_path, timeout=30)
    assert result.returncode == 2
    assert "refusing to bind the emulator to 0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_emulator_reports_a_bad_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text("this is = not [valid toml\n")
    result = run_cli(["emulator", "--port", str(free_port()), "--scenario", str(scenario)], cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.toml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["http", "70000"])
def test_bad_port_flag_is_a_usage_error(tmp_path: Path, port: str) -> None:
    result = run_cli(["emulator", "--port", port], cwd=tmp_path)
    assert result.returncode == 2
    assert "argument --port: expected a port number" in result.stderr


def test_procfile_worker_line_runs_and_stops_cleanly(tmp_path: Path) -> None:
    assert run_cli(["migrate"], cwd=tmp_path).returncode == 0
    with BackgroundProcess(["worker"], cwd=tmp_path) as worker:
        worker.wait_for_output("worker started on SQLite file ./data/pulsegate.db")
        assert worker.stop(signal.SIGTERM) == 0
    assert "worker stopped" in worker.output


def test_procfile_web_line_serves_the_dashboard(tmp_path: Path) -> None:
    assert run_cli(["migrate"], cwd=tmp_path).returncode == 0
    port = free_port()
    with BackgroundProcess(["dashboard", "--port", str(port)], cwd=tmp_path) as web:
        status = wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=60, process=web.process)
        assert status == 200
        web.stop()


def test_procfile_names_only_commands_that_exist() -> None:
    procfile = (Path(__file__).resolve().parents[1] / "Procfile").read_text().splitlines()
    assert [line.split(":", 1)[0] for line in procfile] == ["release", "web", "worker", "gateway"]
    assert [line.split(":", 1)[1].split()[:2] for line in procfile] == [
        ["pulsegate", "migrate"],
        ["pulsegate", "dashboard"],
        ["pulsegate", "worker"],
        ["pulsegate", "gateway"],
    ]


def test_a_bad_port_from_the_platform_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    for command in ("dashboard", "up"):
        result = run_cli([command], cwd=tmp_path, env={"PORT": "eighty"}, timeout=30)
        assert result.returncode == 2, (command, result.stderr)
        assert f"pulsegate {command}: error: argument --port: expected a port number, got 'eighty'" in result.stderr
        assert "Traceback" not in result.stderr
