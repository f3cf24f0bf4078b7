"""The README's alert sections stay true: its default-rule table lists exactly the shipped rules, in order, and its
rules-file example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pulsegate.core.alerts.config import load_alert_config
from pulsegate.core.alerts.rules import DEFAULT_RULES
from pulsegate.core.settings import load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"### {title}\n")
    return README[start : README.index("\n#", start + 1)]


def test_the_default_rule_table_lists_every_shipped_rule() -> None:
    rows = re.findall(r"^\| `([a-z0-9_.-]+)` \| `([a-z0-9_]+)`", _section("Default alert rules"), re.MULTILINE)
    assert rows == [(rule.id, rule.kind) for rule in DEFAULT_RULES]


def test_the_rules_file_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = re.search(r"```toml\n(.*?)```", _section("The alert rules file"), re.DOTALL)
    assert example is not None
    path = tmp_path / "alerts.toml"
    path.write_text(example.group(1))
    monkeypatch.setenv("PAGER_SLACK_WEBHOOK", "https://hooks.slack.com/services/T0/B0/x")
    settings = load_settings({"ALERT_RULES_FILE": str(path)}, env_file=None)
    config = load_alert_config(settings)
    rules = {rule.id: rule for rule in config.rules}
    assert "latency_p95_high" not in rules
    assert rules["success_rate_low"].threshold == 98 and rules["openai_overloaded"].kind == "error_class_share_above"
    assert [channel.name for channel in config.channels] == ["pager"]
