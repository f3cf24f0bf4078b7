"""Hostile settings, alert-rule TOML and dashboard filter values: a clear error naming what is wrong, or a clamped
default — never a traceback from deep inside.

Hypothesis runs with capped examples (``max_examples``) so CI stays fast.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsegate.core.alerts.config import AlertConfigError, build_config, read_rules_file
from pulsegate.core.errors import ConfigError
from pulsegate.core.settings import Settings, load_settings
from pulsegate.dashboard import filters as flt

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELDS = sorted(name.upper() for name, info in Settings.model_fields.items() if not info.exclude)
KEY_VARIABLES = ["ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY_2", "OPENAI_API_KEY", "OPENAI_API_KEY_7"]
#: Text a hostile or careless operator may put anywhere: control characters, huge numbers, other scripts.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "-1", "0", "1e309", "nan", "inf", "-inf", "99999999999999999999999999", "0x10", "1_000", " 5 ",
            "'; DROP TABLE api_usage_metrics; --", "\" OR 1=1 --", "http://", "://x", "redis://", "file:///etc/passwd",
            "javascript:alert(1)", "postgresql+asyncpg://h/db", "mysql://h/db", "sqlite://", "\x00", "a\nb",
            "true", "yes", "☃", "\ud800", "%s%s%s", "{0.__class__}", "${HOME}", "x" * 5000,
        ]
    ),
)  # fmt: skip


def _clear_error(exc: ConfigError, names: list[str]) -> None:
    text = str(exc)
    assert text.startswith("invalid Pulsegate settings"), text
    assert "Traceback" not in text
    for name in names:
        assert any(problem.startswith(name) or name in problem for problem in exc.problems), (name, exc.problems)


@FAST
@given(name=st.sampled_from(FIELDS), value=HOSTILE_TEXT)
def test_a_hostile_setting_is_accepted_or_refused_naming_its_variable(name: str, value: str) -> None:
    try:
        loaded = load_settings({name: value}, env_file=None)
    except ConfigError as exc:
        _clear_error(exc, [name])
    else:
        assert isinstance(loaded, Settings)
        repr(loaded), loaded.describe()  # showing settings never fails either


@FAST
@given(values=st.dictionaries(st.sampled_from(FIELDS), HOSTILE_TEXT, min_size=2, max_size=6))
def test_several_hostile_settings_are_all_named_in_one_error(values: dict[str, str]) -> None:
    try:
        load_settings(values, env_file=None)
    except ConfigError as exc:
        named = [n for n in values if any(p.startswith(n + "=") or p.startswith(n + ":") for p in exc.problems)]
        assert named, exc.problems
        for problem in exc.problems:
            assert any(problem.startswith(n) for n in values), problem


@FAST
@given(name=st.sampled_from(KEY_VARIABLES), value=HOSTILE_TEXT)
def test_a_hostile_key_value_is_refused_naming_its_variable_and_never_echoed(name: str, value: str) -> None:
    try:
        loaded = load_settings({name: value}, env_file=None)
    except ConfigError as exc:
        _clear_error(exc, [name])
        if len(value.strip()) >= 12:
            assert value.strip() not in str(exc)
    else:
        keys = loaded.anthropic_keys + loaded.openai_keys
        if not value.strip():
            assert keys == ()  # empty counts as unset
            return
        (key,) = keys
        assert key.reveal() == value.strip()
        # a key goes into an HTTP header: printable ASCII only (anything else is refused above)
        assert all(33 <= ord(ch) <= 126 for ch in key.reveal()), repr(value)


@pytest.mark.parametrize("value", ["sk-ant-\x01abc-defghijklmnop", "sk-ant-é-abcdefghijklmnop", "“sk-ant-abcdefghijk”"])
def test_a_key_with_control_or_non_ascii_characters_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"ANTHROPIC_API_KEY": value}, env_file=None)
    (problem,) = caught.value.problems
    assert problem.startswith("ANTHROPIC_API_KEY=") and "printable ASCII" in problem, problem
    assert value not in str(caught.value)


# --- alert-rule TOML -----------------------------------------------------------------------------------------------

RULE_FIELDS = [
    "id", "kind", "threshold", "window", "for", "min_samples", "severity", "labels", "scope", "provider", "model",
    "error_class", "enabled", "objective", "short_window", "cap_usd", "key_caps", "statuses", "nonsense",
]  # fmt: skip
TOML_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        HOSTILE_TEXT,
        st.sampled_from(["5m", "1h", "-5m", "99999999d", "error_rate_above", "critical", "key", "success_rate_below"]),
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
RULE = st.dictionaries(st.sampled_from(RULE_FIELDS), TOML_VALUES, max_size=6)
ID = st.sampled_from(["error_rate", "latency_p95", "mine", "x" * 80, "Bad Id", "'; DROP TABLE alert_episodes; --"])


@FAST
@given(
    rules=st.lists(st.builds(lambda rule, rule_id: {**rule, "id": rule_id} if rule_id else rule, RULE, ID | st.none())),
    top=st.dictionaries(st.sampled_from(["group_wait", "repeat_interval", "bogus"]), TOML_VALUES, max_size=2),
)
def test_hostile_alert_rules_are_refused_naming_the_rule_and_field(rules: list[dict], top: dict) -> None:
    base = load_settings({}, env_file=None)
    try:
        build_config({"rules": rules, **top}, base)
    except AlertConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith(("rule ", "rules[", "group_wait:", "repeat_interval:", "bogus:")), problem
            if problem.startswith(("rule ", "rules[")):
                assert problem.count(": ") >= 2, problem  # "<rule>: <field>: <problem>"


@FAST
@given(text=st.text(max_size=200) | st.sampled_from(["[[rules]]\nid = 'x'\nkind = 1\n", "[[rules]\n", "a = \x00"]))
def test_a_hostile_rules_file_is_refused_naming_the_file(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path: Path = tmp_path_factory.mktemp("rules") / "rules.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    base = load_settings({}, env_file=None)
    try:
        build_config(read_rules_file(path), base, source=str(path))
    except AlertConfigError as exc:
        assert exc.source == str(path) and exc.problems
        assert "Traceback" not in str(exc)


def test_a_rules_file_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"[[rules]]\nid = '\xff\xfe'\n")
    with pytest.raises(AlertConfigError) as caught:
        read_rules_file(path)
    assert caught.value.source == str(path)
    assert caught.value.problems[0].startswith("not valid TOML") or "UTF-8" in caught.value.problems[0]


def test_tomllib_is_the_parser() -> None:  # the loader relies on TOMLDecodeError for every syntax problem
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads("[[rules]\n")


# --- dashboard filters and query string ----------------------------------------------------------------------------

PARAM_NAMES = ["range", "from", "to", "provider", "model", "key", "source", "refresh", "now", "page", "x"]
INSTANTS = st.one_of(
    st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "2026-02-30", ""]),
    HOSTILE_TEXT,
)
PARAM_VALUES = st.one_of(HOSTILE_TEXT, INSTANTS, st.sampled_from([*flt.RANGES, *flt.REFRESH, "anthropic", "probe"]))
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(params=st.dictionaries(st.sampled_from(PARAM_NAMES), PARAM_VALUES, max_size=8))
def test_any_query_string_gives_usable_filters_or_a_clear_message(params: dict[str, str]) -> None:
    try:
        now = flt.current_now(params, environ={})
    except flt.BadNow as exc:
        assert "is not" in str(exc)
        now = NOW
    filters = flt.from_params(params)
    query = filters.query_filter(now)
    assert query.start < query.end
    assert query.end - query.start <= flt.MAX_SPAN
    assert filters.range in flt.RANGES
    assert filters.provider in (None, *flt.PROVIDERS) and filters.source in (None, *flt.SOURCES)
    for text in (filters.model, filters.key_label):
        assert text is None or (0 < len(text) <= flt.MAX_TEXT and text.isprintable())
    assert flt.refresh_seconds(params) in flt.REFRESH.values()
    flt.from_params(filters.to_params())  # a view's own link opens too


@pytest.mark.parametrize(
    "now", ["0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59Z", "9999-12-31T20:00:00-05:00"]
)
def test_a_now_at_the_edge_of_the_calendar_is_a_clear_message(now: str) -> None:
    with pytest.raises(flt.BadNow, match="is not a time between"):
        flt.current_now({"now": now}, environ={})


def test_a_custom_range_is_clamped_to_the_longest_span() -> None:
    filters = flt.from_params({"range": "custom", "from": "1971-01-01T00:00", "to": "2026-03-10T12:00"})
    query = filters.query_filter(NOW)
    assert query.end == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert query.start == query.end - flt.MAX_SPAN == query.end - timedelta(days=400)


@pytest.mark.parametrize("value", ["gpt\x00", "a\nb", "\u202egpt", "\ud800"])
def test_a_filter_text_with_control_characters_is_dropped(value: str) -> None:
    assert flt.from_params({"model": value, "key": value}) == flt.Filters()


CHANNEL_FIELDS = ["name", "format", "url", "url_env", "secret_env", "severities", "timeout_s", "bogus"]
CHANNEL = st.dictionaries(
    st.sampled_from(CHANNEL_FIELDS),
    TOML_VALUES | st.sampled_from(["slack", "discord", "generic", "http://127.0.0.1:9/x", "HOME", "ftp://x/y"]),
    max_size=5,
)


@FAST
@given(channels=st.lists(CHANNEL, max_size=3) | TOML_VALUES)
def test_hostile_channels_are_refused_naming_the_channel_and_field(channels: object) -> None:
    base = load_settings({}, env_file=None)
    try:
        build_config({"channels": channels}, base)
    except AlertConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith(("channel ", "channels[", "channels:")), problem
            assert "Traceback" not in problem
