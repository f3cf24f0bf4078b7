"""The README stays true: every setting is documented with its real default, every variable and command it names
exists, its error-class table is complete, its links resolve, its probe-cost figures follow from the price table, and
its Python examples run against the emulator. (The alert sections are checked by tests/alerts/test_readme.py.)"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from pulsegate import migrations
from pulsegate.core.errors import ErrorClass
from pulsegate.core.pricing import PriceTable
from pulsegate.core.settings import Settings
from pulsegate.emulator import EmulatorServer
from pulsegate.jobs.cli.commands import build_parser
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS, emu, emulator_server

__all__ = ["emu", "emulator_server"]

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: Variables the README may name that are not Settings fields: read by the CLI or the dashboard, the key variables,
#: the recognised-and-refused Upstash pair, and the rules-file example's channel variable.
NOT_SETTINGS = {
    "PULSEGATE_DASHBOARD_NOW",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "PAGER_SLACK_WEBHOOK",
    "BENCH_ROWS",  # a make variable of `make bench`
    "PULSEGATE_TOKEN",  # the app's own variable in the gateway example
}
KEY_VARIABLE = re.compile(r"^(ANTHROPIC|OPENAI)_API_KEY(_\d+|_N)?$")
#: Upper-case names in the README that are code, not variables (core.Priority's constants).
CODE_NAMES = {"USER_FACING", "USER_FACING_HIGH", "ADMIN_HIGH", "BACKGROUND_HIGH", "FALLBACK_BOOST"}


def section(title: str, level: int = 2) -> str:
    marker = "#" * level + " "
    start = README.index(f"\n{marker}{title}\n")
    end = README.find(f"\n{marker}", start + 1)
    return README[start : end if end != -1 else len(README)]


def config_rows() -> dict[str, list[str]]:
    """{VARIABLE: cells} for every configuration-table row whose first cell is exactly one variable."""
    rows: dict[str, list[str]] = {}
    for line in section("Configuration").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        found = re.fullmatch(r"`([A-Z][A-Z0-9_]+)`", cells[0]) if len(cells) >= 4 else None
        if found:
            assert found.group(1) not in rows, f"{found.group(1)} has two rows"
            rows[found.group(1)] = cells
    return rows


def settings_variables() -> dict[str, Any]:
    return {name.upper(): info for name, info in Settings.model_fields.items() if not info.exclude}


def shown_default(value: object) -> set[str]:
    if isinstance(value, bool):
        return {"`true`", "`on`"} if value else {"`false`", "`off`"}
    if isinstance(value, float):
        return {f"`{value:g}`", f"`{value}`"}
    return {f"`{value}`"}


def test_every_setting_has_a_row_with_its_default_a_meaning_and_an_example() -> None:
    rows = config_rows()
    missing = sorted(set(settings_variables()) - set(rows))
    assert not missing, f"README configuration table lacks {missing}"
    for name, info in settings_variables().items():
        default, meaning, example = rows[name][1:4]
        if info.default is None:
            assert default.startswith("—"), f"{name}: the default cell should start with — (unset), got {default!r}"
        else:
            assert default.split(" ")[0] in shown_default(info.default), f"{name}: README says {default!r}"
        assert meaning and example, f"{name}: meaning and example must not be empty"


def test_every_variable_the_readme_names_exists() -> None:
    named = set(re.findall(r"(?<![A-Za-z0-9_$])\$?\{?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)", README))
    unknown = {
        name
        for name in named
        if name not in settings_variables()
        and name not in NOT_SETTINGS
        and name not in CODE_NAMES
        and not KEY_VARIABLE.match(name)
    }
    assert not unknown, f"the README names variables Pulsegate does not read: {sorted(unknown)}"


def _subcommands(parser: Any) -> dict[str, Any]:
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


def test_every_command_the_readme_shows_exists() -> None:
    top = _subcommands(build_parser())
    # `pulsegate X` is a command; `from pulsegate import X` is Python
    shown = re.findall(r"(?<!from )pulsegate ([a-z][a-z-]*)(?: ([a-z][a-z|\\]*))?", README)
    assert shown
    for command, sub in shown:
        assert command in top, f"`pulsegate {command}` is not a command"
        nested = _subcommands(top[command])
        if nested and sub:
            for part in sub.replace("\\", "").split("|"):
                assert part in nested, f"`pulsegate {command} {part}` is not a command"
    assert {"up", "demo", "migrate", "worker", "dashboard"} <= {command for command, _ in shown}
    targets = set(re.findall(r"^([a-z]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    shown_targets = re.findall(r"`make ([a-z]+)`|^make ([a-z]+)", README, re.MULTILINE)
    assert shown_targets
    for target in filter(None, (a or b for a, b in shown_targets)):
        assert target in targets, f"`make {target}` is not a Makefile target"


def test_the_error_class_table_lists_every_error_class() -> None:
    table = section("Error classes", level=3)
    listed = [
        name
        for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", table, re.MULTILINE)
        for name in re.findall(r"`([a-z_]+)`", row)
    ]
    assert sorted(listed) == sorted(c.value for c in ErrorClass)


def test_relative_links_resolve() -> None:
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", README) if "://" not in t}
    targets.discard("")
    missing = sorted(t for t in targets if not (ROOT / t).exists())
    assert not missing, f"broken links: {missing}"
    for name in README.split("(#")[1:]:  # in-page anchors name a heading
        anchor = name.split(")")[0]
        slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", README, re.MULTILINE)}
        assert anchor in slugs, f"no heading for #{anchor}"


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_probe_cost_table_follows_from_the_price_table_and_the_defaults() -> None:
    table = section("Cost")
    defaults = Settings.model_fields
    interval = defaults["probe_interval_s"].default
    per_day = 86400 / interval
    assert f"{per_day:g} probes" in table
    prices = PriceTable.load()
    for provider, field in (("anthropic", "anthropic_probe_model"), ("openai", "openai_probe_model")):
        model = defaults[field].default
        cost = prices.cost(provider, model, 10, 1)
        assert cost is not None
        row = next(line for line in table.splitlines() if f"`{model}`" in line)
        figures = [float(x) for x in re.findall(r"\$([0-9.]+)(?! /| per M)", row.split("|", 3)[3])]
        assert figures == pytest.approx([cost, cost * per_day, cost * per_day * 30], rel=0.02), row


def python_blocks(title: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section(title), re.DOTALL)


def test_the_python_examples_parse() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.DOTALL)
    assert blocks
    for block in blocks:
        compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.slow
def test_the_integration_examples_run_against_the_emulator(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    migrations.upgrade(store)
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    for name, value in {
        "ANTHROPIC_API_KEY": ANTHROPIC_KEYS[0],
        "OPENAI_API_KEY": OPENAI_KEYS[0],
        "ANTHROPIC_BASE_URL": emu.url,
        "OPENAI_BASE_URL": emu.openai_base_url,
        "DATABASE_URL": store,
        "SPOOL_DIR": str(tmp_path / "spool"),
    }.items():
        monkeypatch.setenv(name, value)
    setup, streaming, sync, operating = python_blocks("Using Pulsegate in your app")
    namespace: dict[str, Any] = {}

    async def run() -> None:
        exec(setup, namespace)
        assert await namespace["reply"]("Hello") != ""
        exec(streaming, namespace)
        await namespace["stream_reply"]("Hello")
        await asyncio.to_thread(exec, sync, namespace)
        assert namespace["response"].text
        code = compile(operating, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, namespace)
        if asyncio.iscoroutine(result):
            await result

    asyncio.run(run())
