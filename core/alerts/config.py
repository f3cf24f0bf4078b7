"""The alert configuration in force: shipped rules, ALERT_RULES_FILE overrides, channels and timers.

The TOML file has ``[[rules]]`` entries (a default's ``id`` overrides the fields it gives, ``enabled = false``
turns it off, a new ``id`` with a ``kind`` adds a rule), ``[[channels]]`` entries (parsed by
:func:`pulsegate.core.alerts.channels.config.parse_channels`) and optional top-level ``group_wait`` /
``repeat_interval``. Every problem names the rule (or channel), the field and what is wrong; :class:`AlertConfigLoader`
keeps the last good configuration when a reload fails.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulsegate.core.alerts import rule_parsing
from pulsegate.core.alerts.rule_fields import parse_duration
from pulsegate.core.alerts.rule_parsing import RuleProblems, did_you_mean, rule_from_toml
from pulsegate.core.alerts.rules import DEFAULT_RULES, Rule
from pulsegate.core.errors import ConfigError

if TYPE_CHECKING:
    from pulsegate.core.alerts.channels.config import ChannelConfig
    from pulsegate.core.settings import Settings

log = logging.getLogger(__name__)

_TOP_LEVEL = frozenset({"rules", "channels", "group_wait", "repeat_interval"})


class AlertConfigError(ConfigError):
    """The alert rules file (or its channels) cannot be used; ``problems`` has one line per problem, each naming
    the rule or channel and the field."""

    def __init__(self, problems: list[str], source: str = "alert rules") -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        Exception.__init__(self, f"invalid alert configuration ({count} {noun} in {source}):\n{lines}")


@dataclass(frozen=True, slots=True)
class AlertConfig:
    """Everything the engine and the dispatcher need. ``rules`` holds the enabled rules only."""

    rules: tuple[Rule, ...]
    channels: tuple[ChannelConfig, ...] = ()
    group_wait_s: float = 30.0
    repeat_interval_s: float = 14400.0
    dashboard_url: str | None = None
    heartbeat_interval_s: float = 5.0
    probe_interval_s: float = 300.0  # the longest probe interval of any provider (no_probes' default threshold)
    disabled_rules: tuple[str, ...] = ()
    source: str = "defaults"
    channel_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channel_names", tuple(c.name for c in self.channels))

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def merge_rules(entries: Sequence[Any], base: Sequence[Rule] = DEFAULT_RULES) -> tuple[list[Rule], list[str]]:
    """(rules in order: defaults first, then added ones; problems). Disabled rules are kept with enabled=False."""
    defaults = {r.id: r for r in base}
    merged: dict[str, Rule] = dict(defaults)
    problems: list[str] = []
    seen: set[str] = set()
    if not isinstance(entries, list):
        return list(defaults.values()), ["rules: expected a list of [[rules]] tables"]
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            problems.append(f"rules[{index}]: expected a table")
            continue
        name = entry.get("id")
        where = f"rule {name!r}" if isinstance(name, str) and name else f"rules[{index}]"
        if isinstance(name, str) and name in seen:
            problems.append(f"{where}: id: defined twice in the file")
            continue
        if isinstance(name, str):
            seen.add(name)
        try:
            rule = rule_from_toml(entry, defaults)
        except RuleProblems as exc:
            problems += [f"{where}: {p.field}: {p.problem}" for p in exc.problems]
            continue
        merged[rule.id] = rule
    return list(merged.values()), problems


def _timer(raw: Mapping[str, Any], name: str, default: float, minimum: float, problems: list[str]) -> float:
    if name not in raw:
        return default
    try:
        seconds = parse_duration(raw[name])
    except ValueError as exc:
        problems.append(f"{name}: {exc}")
        return default
    if seconds < minimum:
        problems.append(f"{name}: expected at least {minimum:g} s, got {seconds:g} s")
        return default
    return seconds


def build_config(raw: Mapping[str, Any], settings: Settings, *, source: str = "defaults") -> AlertConfig:
    """An :class:`AlertConfig` from a parsed TOML document (``{}`` for the defaults) and the settings."""
    from pulsegate.core.alerts.channels.config import parse_channels

    problems = [
        f"{key}: unknown top-level field{did_you_mean(key, _TOP_LEVEL)}" for key in sorted(set(raw) - _TOP_LEVEL)
    ]
    rules, rule_problems = merge_rules(raw.get("rules", []))
    problems += rule_problems
    for rule in rules:  # defaults are checked too: a shipped mistake must not pass silently
        problems += [f"rule {rule.id!r}: {p.field}: {p.problem}" for p in rule_parsing.rule_problems(rule)]
    group_wait = _timer(raw, "group_wait", settings.alert_group_wait_s, 0, problems)
    repeat = _timer(raw, "repeat_interval", settings.alert_repeat_interval_s, 60, problems)
    channels: tuple[ChannelConfig, ...] = ()
    try:
        channels = parse_channels(raw.get("channels", []), settings)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise AlertConfigError(problems, source)
    probe_intervals = [settings.probe_interval_s]
    for name in ("anthropic_probe_interval_s", "openai_probe_interval_s"):
        value = getattr(settings, name, None)
        if value is not None:
            probe_intervals.append(value)
    return AlertConfig(
        rules=tuple(r for r in rules if r.enabled),
        channels=channels,
        group_wait_s=group_wait,
        repeat_interval_s=repeat,
        dashboard_url=settings.dashboard_url,
        heartbeat_interval_s=settings.heartbeat_interval_s,
        probe_interval_s=max(probe_intervals),
        disabled_rules=tuple(r.id for r in rules if not r.enabled),
        source=source,
    )


def read_rules_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed TOML document, or :class:`AlertConfigError` naming the file and the line."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise AlertConfigError([f"ALERT_RULES_FILE: {source} does not exist"], source) from None
    except OSError as exc:
        raise AlertConfigError([f"ALERT_RULES_FILE: cannot read {source}: {exc.strerror}"], source) from None
    except tomllib.TOMLDecodeError as exc:
        raise AlertConfigError([f"not valid TOML: {exc}"], source) from None
    except UnicodeDecodeError as exc:
        problem = f"not valid TOML: not UTF-8 text (byte {exc.start} cannot be decoded)"
        raise AlertConfigError([problem], source) from None


def load_alert_config(settings: Settings) -> AlertConfig:
    """Shipped defaults + ALERT_RULES_FILE + MONITORING_WEBHOOK_URL; :class:`AlertConfigError` if unusable."""
    if not settings.alert_rules_file:
        return build_config({}, settings)
    raw = read_rules_file(settings.alert_rules_file)
    return build_config(raw, settings, source=settings.alert_rules_file)


class AlertConfigLoader:
    """The config in force for a long-running worker: reloaded when the rules file changes; a reload that fails is
    logged (``last_error``) and the last good configuration stays in force. The first load raises."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.last_error: AlertConfigError | None = None
        self._stamp = self._file_stamp()
        self._config = load_alert_config(settings)

    def _file_stamp(self) -> tuple[float, int] | None:
        path = self.settings.alert_rules_file
        if not path:
            return None
        try:
            stat = Path(path).stat()
        except OSError:
            return (-1.0, -1)
        return (stat.st_mtime, stat.st_size)

    @property
    def config(self) -> AlertConfig:
        return self._config

    def get(self) -> AlertConfig:
        """The config in force, reloading first when the file's modification time or size changed."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return self._config
        self._stamp = stamp
        try:
            self._config = load_alert_config(self.settings)
        except AlertConfigError as exc:
            self.last_error = exc
            log.error("alert rules not reloaded, the previous ones stay in force: %s", exc)
        else:
            self.last_error = None
            log.info("alert rules reloaded from %s (%d rules)", self.settings.alert_rules_file, len(self._config.rules))
        return self._config
