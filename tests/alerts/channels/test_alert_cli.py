"""``pulsegate alert …`` as a user runs it: real processes, a real SQLite store, loopback receivers, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulsegate.core.store.tables import alert_deliveries, alert_notifications
from tests.alerts.channels.receivers import (
    DISCORD_TOKEN,
    HMAC_SECRET,
    SLACK_NO_SERVICE,
    SLACK_OK,
    SLACK_TOKEN,
    Receiver,
    discord_ok,
)
from tests.support.processes import run_cli


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    assert run_cli(["migrate"], cwd=tmp_path).returncode == 0
    return tmp_path


def _rows(workdir: Path, table: sa.Table) -> list[dict]:
    engine = sa.create_engine(f"sqlite:///{workdir / 'data' / 'pulsegate.db'}")
    try:
        with engine.connect() as connection:
            return [dict(r) for r in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]
    finally:
        engine.dispose()


def _slack_env(receiver: Receiver) -> dict[str, str]:
    return {
        "MONITORING_WEBHOOK_URL": receiver.url(f"/services/T0A1/B0B2/{SLACK_TOKEN}"),
        "MONITORING_WEBHOOK_FORMAT": "slack",
        "DASHBOARD_URL": "https://pulse.example.com",
    }


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (SLACK_TOKEN, DISCORD_TOKEN, HMAC_SECRET):
            assert secret not in text


def test_alert_test_delivers_to_the_default_channel_and_exits_0(workdir: Path, receiver: Receiver) -> None:
    receiver.default = SLACK_OK
    result = run_cli(["alert", "test"], cwd=workdir, env=_slack_env(receiver))

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"default  slack    http://127.0.0.1:{receiver.port}/…  delivered (HTTP 200)",
        "1/1 delivered",
    ]
    assert result.stderr == ""
    (request,) = receiver.requests
    payload = request.json()
    assert request.path == f"/services/T0A1/B0B2/{SLACK_TOKEN}"
    assert payload["text"].startswith("[TEST] Pulsegate test notification\n")
    assert payload["attachments"][0]["color"] == "#6a737d"
    assert payload["attachments"][0]["blocks"][-1]["elements"][0]["url"] == "https://pulse.example.com"
    (row,) = _rows(workdir, alert_notifications)
    assert (row["channel"], row["transition"], row["status"], row["attempts"]) == ("default", "test", "delivered", 1)
    (delivery,) = _rows(workdir, alert_deliveries)
    assert (delivery["delivered"], delivery["status_code"], delivery["error"]) == (True, 200, None)


def test_alert_test_on_a_dead_webhook_exits_1_and_says_why(workdir: Path, receiver: Receiver) -> None:
    receiver.default = SLACK_NO_SERVICE
    result = run_cli(["alert", "test", "--json"], cwd=workdir, env=_slack_env(receiver))

    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == [
        {
            "channel": "default",
            "format": "slack",
            "url": f"http://127.0.0.1:{receiver.port}/…",
            "delivered": False,
            "status_code": 404,
            "error": "broken: HTTP 404 no_service",
            "notification_id": 1,
        }
    ]
    assert len(receiver.requests) == 1  # a test is tried once
    _assert_no_secret(result.stdout, result.stderr)


def test_alert_test_with_a_channel_file_picks_one_channel(workdir: Path, receiver: Receiver) -> None:
    receiver.default = discord_ok
    rules = workdir / "alerts.toml"
    rules.write_text(
        '[[channels]]\nname = "ops"\nformat = "discord"\nurl_env = "OPS_DISCORD_URL"\n'
        '[[channels]]\nname = "audit"\nformat = "generic"\nurl = "http://127.0.0.1:9/unused"\n'
    )
    env = {"ALERT_RULES_FILE": str(rules), "OPS_DISCORD_URL": receiver.url(f"/api/webhooks/42/{DISCORD_TOKEN}")}
    result = run_cli(["alert", "test", "--channel", "ops"], cwd=workdir, env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "1/1 delivered"
    (request,) = receiver.requests
    assert request.query == {"wait": ["true"]}
    assert request.json()["content"] == "[TEST] Pulsegate test notification"
    _assert_no_secret(result.stdout, result.stderr)

    unknown = run_cli(["alert", "test", "--channel", "pager"], cwd=workdir, env=env)
    assert unknown.returncode == 2
    assert unknown.stderr == "pulsegate alert: no alert channel named 'pager' (configured: ops, audit)\n"


def test_alert_test_usage_errors_are_one_line_and_exit_2(workdir: Path, tmp_path_factory) -> None:
    none = run_cli(["alert", "test"], cwd=workdir)
    assert (none.returncode, none.stdout) == (2, "")
    assert none.stderr == (
        "pulsegate alert: no alert channels are configured: set MONITORING_WEBHOOK_URL or add [[channels]] to "
        "ALERT_RULES_FILE\n"
    )
    empty = tmp_path_factory.mktemp("unmigrated")
    env = {"MONITORING_WEBHOOK_URL": "http://127.0.0.1:9/services/x/y/z"}
    unmigrated = run_cli(["alert", "test"], cwd=empty, env=env)
    assert unmigrated.returncode == 2
    assert unmigrated.stderr.startswith("pulsegate alert: SQLite file ")
    assert unmigrated.stderr.endswith("has no tables yet: run `pulsegate migrate` first\n")

    bad = workdir / "bad.toml"
    bad.write_text(
        '[[rules]]\nid = "sucess_rate_low"\n'
        '[[rules]]\nid = "success_rate_low"\nthreshold = "high"\nresolve_threshold = 90\nwindow = "soon"\n'
        '[[channels]]\nname = "x"\nurl = "ftp://files.example.com/SeCrEt"\n'
    )
    invalid = run_cli(["alert", "rules"], cwd=workdir, env={"ALERT_RULES_FILE": str(bad)})
    assert (invalid.returncode, invalid.stdout) == (2, "")
    assert invalid.stderr.splitlines()[1:] == [
        "  - rule 'sucess_rate_low': id: unknown rule id 'sucess_rate_low' (did you mean 'success_rate_low'?)",
        "  - rule 'success_rate_low': threshold: expected a number, got 'high'",
        "  - rule 'success_rate_low': window: expected a duration such as 300 or '5m', got 'soon'",
        "  - rule 'success_rate_low': resolve_threshold: must be at or above the threshold (95), got 90: it fires "
        "when the value is < 95 and resolves when it is back ≥ the resolve threshold",
        "  - channel 'x': url: 'ftp://files.example.com/…' is not an http(s) URL",
    ]
    assert invalid.stderr.splitlines()[0].endswith(f"invalid alert configuration (5 problems in {bad}):")
    assert "SeCrEt" not in invalid.stderr and "Traceback" not in invalid.stderr


def test_alert_rules_prints_the_rules_and_channels_in_force(workdir: Path) -> None:
    rules = workdir / "alerts.toml"
    rules.write_text(
        '[[rules]]\nid = "latency_p95_high"\nenabled = false\n'
        '[[rules]]\nid = "success_rate_low"\nthreshold = 99\n'
        '[[channels]]\nname = "pager"\nurl_env = "PAGER"\nseverities = ["critical"]\n'
    )
    env = {"ALERT_RULES_FILE": str(rules), "PAGER": f"https://hooks.slack.com/services/T/B/{SLACK_TOKEN}"}
    result = run_cli(["alert", "rules"], cwd=workdir, env=env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"alert rules from {rules}: ")
    assert lines[1].split() == [
        *("rule", "kind", "severity", "threshold", "resolves", "window", "for", "keep", "min", "scope")
    ]
    # a new threshold alone resolves at itself; the shipped keep_firing_for stays
    assert lines[2].split() == [
        *("success_rate_low", "success_rate_below", "critical", "99", "%", "-", "15m", "5m", "5m", "20", "provider")
    ]
    overloaded = next(line for line in lines if line.startswith("overloaded_share_high "))
    assert overloaded.split()[3:] == [
        *("10", "%", "5", "%", "10m", "5m", "5m", "20", "provider", "(inhibits", "per-key)")
    ]
    assert "disabled: latency_p95_high" in lines
    assert "channel pager: slack https://hooks.slack.com/… severities=critical" in lines
    _assert_no_secret(result.stdout, result.stderr)

    as_json = json.loads(run_cli(["alert", "rules", "--json"], cwd=workdir, env=env).stdout)
    assert as_json["disabled_rules"] == ["latency_p95_high"]
    assert as_json["channels"] == [
        {"name": "pager", "format": "slack", "url": "https://hooks.slack.com/…", "severities": ["critical"]}
    ]


def test_alert_silence_add_list_expire(workdir: Path) -> None:
    added = run_cli(
        ["alert", "silence", "add", "--match", "provider=anthropic", "--match", "rule_id=key_unhealthy",
         "--for", "2h", "--comment", "maintenance"],
        cwd=workdir,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("silence 1 added: provider=anthropic rule_id=key_unhealthy until ")

    listed = run_cli(["alert", "silence", "list", "--json"], cwd=workdir)
    (silence,) = json.loads(listed.stdout)
    assert (silence["id"], silence["state"], silence["matchers"], silence["created_by"], silence["comment"]) == (
        1,
        "active",
        {"provider": "anthropic", "rule_id": "key_unhealthy"},
        "cli",
        "maintenance",
    )
    table = run_cli(["alert", "silence", "list"], cwd=workdir).stdout.splitlines()
    assert table[0].split()[:3] == ["1", "active", "provider=anthropic"]
    assert table[0].endswith("by cli  # maintenance")

    assert run_cli(["alert", "silence", "expire", "1"], cwd=workdir).stdout == "silence 1 expired\n"
    assert run_cli(["alert", "silence", "expire", "1"], cwd=workdir).stdout == "silence 1 had already ended\n"
    assert json.loads(run_cli(["alert", "silence", "list", "--json"], cwd=workdir).stdout)[0]["state"] == "expired"

    for args, error in (
        (["expire", "9"], "no silence with id 9"),
        (["add", "--match", "provider"], "--match 'provider': expected NAME=VALUE, e.g. provider=anthropic"),
        (["add", "--match", "a=b"], "give how long the silence lasts: --for DURATION (e.g. 2h) or --until TIME"),
        (["add", "--match", "a=b", "--for", "soon"], "--for: expected a duration such as 300 or '5m', got 'soon'"),
        (["add", "--match", "a=b", "--until", "2020-01-01T00:00+00:00"], "ends_at: must be in the future"),
    ):
        result = run_cli(["alert", "silence", *args], cwd=workdir)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"pulsegate alert: {error}"), result.stderr
