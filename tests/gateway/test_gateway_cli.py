"""``pulsegate gateway-token`` and ``pulsegate gateway`` as an operator types them: the token alone on the last line,
lists that never show a token, one clear line for bad input, and a gateway that will not face the network unguarded."""

from __future__ import annotations

from pathlib import Path

from tests.support.processes import free_port, run_cli


def _env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/store.db", "SPOOL_DIR": str(tmp_path / "spool")}


def test_create_list_update_revoke(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli(["migrate"], cwd=tmp_path, env=env).returncode == 0
    created = run_cli(["gateway-token", "create", "--name", "web", "--rpm", "60", "--models", "gpt-4.1, claude-x"],
                      cwd=tmp_path, env=env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    lines = created.stdout.strip().splitlines()
    token = lines[-1]
    assert token.startswith("pgw_") and len(token) == 44 and " " not in token
    assert lines[0] == f"token created for app 'web' (shown once; only its prefix {token[:12]} is kept readable):"
    listed = run_cli(["gateway-token", "list"], cwd=tmp_path, env=env)
    assert token[:12] in listed.stdout and token not in listed.stdout and listed.stdout.rstrip().endswith("active")
    updated = run_cli(["gateway-token", "update", "web", "--rpm", "none", "--timeout", "30"], cwd=tmp_path, env=env)
    assert updated.returncode == 0, updated.stderr
    assert "rpm=None" in updated.stdout and "timeout_s=30.0" in updated.stdout
    assert "models=['gpt-4.1', 'claude-x']" in updated.stdout
    revoked = run_cli(["gateway-token", "revoke", token[:12]], cwd=tmp_path, env=env)
    assert revoked.returncode == 0 and f"token {token[:12]} of app 'web' revoked at" in revoked.stdout


def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run_cli(["migrate"], cwd=tmp_path, env=env)
    cases = {
        ("create", "--name", "bad name"): "pulsegate gateway-token: app name 'bad name' is not valid",
        ("create", "--name", "web", "--rpm", "0"): "pulsegate gateway-token: rpm must be a whole number above 0",
        ("create", "--name", "web", "--rpm", "ten"): "argument --rpm: expected a whole number (or none), got 'ten'",
        ("revoke", "pgw_missing"): "pulsegate gateway-token: no gateway token with prefix 'pgw_missing'",
        ("update", "ghost", "--rpm", "5"): "pulsegate gateway-token: no gateway app named 'ghost'",
    }
    for args, message in cases.items():
        result = run_cli(["gateway-token", *args], cwd=tmp_path, env=env)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_the_gateway_refuses_a_public_address_while_no_token_exists(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run_cli(["migrate"], cwd=tmp_path, env=env)
    result = run_cli(["gateway", "--host", "0.0.0.0", "--port", str(free_port())], cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 2
    assert "refusing to serve the gateway on 0.0.0.0 with no gateway token defined" in result.stderr


def test_the_gateway_says_to_migrate_an_empty_store(tmp_path: Path) -> None:
    result = run_cli(["gateway", "--port", str(free_port())], cwd=tmp_path, env=_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert "has no tables yet: run `pulsegate migrate` first" in result.stderr
