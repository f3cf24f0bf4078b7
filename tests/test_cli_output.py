"""What the ``pulsegate`` command prints for a person: help as plain text, settings aligned, a missing key warned.

The help and settings are read through a real process (``run_cli``) where the exact text matters, and through
the parser itself to walk every sub-command's help quickly.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulsegate.core.settings import load_settings
from pulsegate.jobs.cli.commands import build_parser
from pulsegate.jobs.cli.settings_command import format_settings
from pulsegate.jobs.cli.up import NO_KEY_MESSAGE
from tests.support.processes import run_cli

#: reST / Sphinx markup a docstring may carry: ``literal``, :role:`target`, `interpreted text`.
MARKUP = re.compile(r"``|:[a-z]+:`|`[^`]+`")

TOP_LEVEL_HELP = """\
usage: pulsegate [-h] [-v] COMMAND ...

Pulsegate keeps a Python app's Anthropic and OpenAI calls alive under load, and shows live how they are doing.

positional arguments:
  COMMAND
    migrate      create or upgrade the store's tables (DATABASE_URL)
    settings     show the settings in force, secrets masked; warn when no provider key is set
    emulator     run the local Anthropic/OpenAI emulator (loopback only)
    demo         the whole product on loopback with fake keys: emulator, worker, traffic, webhook sink and dashboard
    worker       run the background worker: scheduled jobs, leader election, HTTP API
    probe        probe API keys now and print the results (exit 1 if one fails)
    alert        alerting: test channels, check rules, silences
    dashboard    run the Streamlit dashboard
    gateway      serve the OpenAI- and Anthropic-compatible gateway
    gateway-token
                 create, list, revoke gateway tokens; change an app's limits
    up           production: migrate, then run the worker and the dashboard together (needs a key)

options:
  -h, --help     show this help message and exit
  -v, --verbose  debug logging

Run 'pulsegate COMMAND --help' for a command's options.
"""


def test_top_level_help_is_plain_text(tmp_path: Path) -> None:
    result = run_cli(["--help"], cwd=tmp_path, env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == TOP_LEVEL_HELP


def every_parser(parser: argparse.ArgumentParser, path: str = "pulsegate") -> Iterator[tuple[str, str]]:
    """(command path, its help text) for the parser and every sub-command below it."""
    yield path, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_parser(sub, f"{path} {name}")


def test_no_help_text_carries_docstring_markup() -> None:
    helps = dict(every_parser(build_parser()))
    assert len(helps) == 22  # pulsegate, its 11 commands, alert's 3, silence's 3, gateway-token's 4
    marked = {path: MARKUP.findall(text) for path, text in helps.items() if MARKUP.search(text)}
    assert marked == {}


def test_format_settings_aligns_values_one_gap_past_the_longest_name() -> None:
    described = {"A": 1, "ANTHROPIC_PROBE_INTERVAL_S": None, "a much longer name than any setting": "x"}
    assert format_settings(described) == [
        "A                                    1",
        "ANTHROPIC_PROBE_INTERVAL_S           None",
        "a much longer name than any setting  x",
    ]
    assert format_settings({}) == []


def test_settings_columns_line_up_whatever_the_name_length(tmp_path: Path) -> None:
    result = run_cli(["settings"], cwd=tmp_path, env={"OPENAI_API_KEY": "sk-test-openai-" + "y" * 30})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # a key is configured: no warning
    lines = result.stdout.splitlines()
    names = [line.split("  ", 1)[0] for line in lines]
    assert names == list(load_settings({}, env_file=None).describe())
    width = max(len(name) for name in names)
    assert width > 24  # longer than the old fixed column, which the longest names overran
    for line, name in zip(lines, names, strict=True):
        assert line[: width + 2] == name.ljust(width + 2), line
        assert line[width + 2] != " ", line  # every value starts in the same column
    assert "ANTHROPIC_PROBE_INTERVAL_S  None" in lines
    assert "DATABASE_URL                sqlite:///./data/pulsegate.db" in lines


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({}, True),
        ({"ANTHROPIC_API_KEY": "sk-ant-api03-" + "Q" * 40}, False),
        ({"OPENAI_API_KEY_2": "sk-test-openai-" + "y" * 30}, False),
    ],
    ids=["no-key", "anthropic-key", "openai-backup-key-only"],
)
def test_settings_warns_on_stderr_when_no_provider_key_is_configured(
    tmp_path: Path, env: dict[str, str], warned: bool
) -> None:
    result = run_cli(["settings"], cwd=tmp_path, env=env)
    assert result.returncode == 0
    expected = (
        "pulsegate settings: warning: no provider key is configured: set ANTHROPIC_API_KEY and/or OPENAI_API_KEY "
        "(more keys: ANTHROPIC_API_KEY_2, OPENAI_API_KEY_2, …) in the environment or in .env; "
        "to try Pulsegate without keys, run `pulsegate demo`\n"
    )
    assert expected == f"pulsegate settings: warning: {NO_KEY_MESSAGE}\n"
    assert result.stderr == (expected if warned else "")
    assert result.stdout.splitlines()[0].startswith("ANTHROPIC_BASE_URL  ")  # the listing is printed either way
