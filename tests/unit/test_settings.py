"""Settings: keys discovered and labelled, defaults, and ONE clear error listing every bad variable."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from pulsegate.core.errors import ConfigError
from pulsegate.core.provider import Provider
from pulsegate.core.settings import DEFAULT_DATABASE_URL, load_settings

ANT_1 = "sk-ant-api03-" + "A" * 30 + "p001"
ANT_2 = "sk-ant-api03-" + "B" * 30 + "p002"
ANT_5 = "sk-ant-api03-" + "C" * 30 + "p005"
OAI_1 = "sk-proj-" + "D" * 40 + "o001"


def test_defaults_with_an_empty_environment() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert (settings.anthropic_rpm, settings.openai_rpm) == (50, 100)
    assert (settings.anthropic_tpm, settings.openai_tpm) == (None, None)
    assert settings.retention_days == 14
    assert settings.anthropic_keys == () and settings.openai_keys == ()
    assert settings.redis_url is None and settings.admin_token is None


def test_keys_follow_their_variable_numbers_with_gaps_and_empties() -> None:
    settings = load_settings(
        {
            "ANTHROPIC_API_KEY": ANT_1,
            "ANTHROPIC_API_KEY_2": ANT_2,
            "ANTHROPIC_API_KEY_3": "   ",
            "ANTHROPIC_API_KEY_5": ANT_5,
            "OPENAI_API_KEY": OAI_1,
        },
        env_file=None,
    )
    keys = settings.keys(Provider.ANTHROPIC)
    assert [(k.label, k.variable) for k in keys] == [
        ("Primary", "ANTHROPIC_API_KEY"),
        ("Backup 1", "ANTHROPIC_API_KEY_2"),
        ("Backup 4", "ANTHROPIC_API_KEY_5"),
    ]
    assert [k.masked for k in keys] == ["sk-ant-…p001", "sk-ant-…p002", "sk-ant-…p005"]
    assert keys[0].reveal() == ANT_1
    assert len({k.fingerprint for k in keys}) == 3 and all(len(k.fingerprint) == 12 for k in keys)
    assert [(k.label, k.masked) for k in settings.openai_keys] == [("Primary", "sk-proj-…o001")]


def test_duplicate_key_is_kept_once_with_a_warning_that_shows_no_key(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        settings = load_settings({"OPENAI_API_KEY": OAI_1, "OPENAI_API_KEY_3": OAI_1}, env_file=None)
    assert [k.label for k in settings.openai_keys] == ["Primary"]
    assert "OPENAI_API_KEY_3 repeats the key already in OPENAI_API_KEY (sk-proj-…o001)" in caplog.text
    assert OAI_1 not in caplog.text


def test_every_bad_variable_is_listed_in_one_error() -> None:
    env = {
        "ANTHROPIC_RPM": "fifty",
        "OPENAI_RPM": "0",
        "OPENAI_TPM": "-3",
        "RETENTION_DAYS": "two weeks",
        "ANTHROPIC_BASE_URL": "localhost:8700",
        "OPENAI_API_KEY_TWO": OAI_1,
    }
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    error = caught.value
    assert error.problems == [
        "OPENAI_API_KEY_TWO: not a key variable; expected OPENAI_API_KEY or OPENAI_API_KEY_<number>, "
        "e.g. OPENAI_API_KEY_2",
        "ANTHROPIC_BASE_URL='localhost:8700': expected an http(s) URL (not an http(s) URL)",
        "ANTHROPIC_RPM='fifty': expected a positive integer (requests per minute)",
        "OPENAI_RPM='0': expected a positive integer (requests per minute)",
        "OPENAI_TPM='-3': expected a positive integer (tokens per minute)",
        "RETENTION_DAYS='two weeks': expected a positive integer (days)",
    ]
    assert str(error).startswith("invalid Pulsegate settings (6 problems in the environment):\n  - ")
    assert OAI_1 not in str(error)


def test_secret_values_are_masked_in_errors() -> None:
    secret_token = "tok-short-9f"
    webhook = "ftp://hooks.example.invalid/services/T000/B000/secretsecret"
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "ADMIN_TOKEN": secret_token,
                "MONITORING_WEBHOOK_URL": webhook,
                "DATABASE_URL": "mysql://app:db-password-1@db.internal/app",
                "REDIS_URL": "http://:redis-password-2@cache.internal",
            },
            env_file=None,
        )
    message = str(caught.value)
    for secret in (secret_token, "secretsecret", "db-password-1", "redis-password-2", "T000"):
        assert secret not in message
    assert "ADMIN_TOKEN='…': expected a token of at least 16 characters" in message
    assert "MONITORING_WEBHOOK_URL='ftp://hooks.example.invalid/…': expected an http(s) webhook URL" in message
    assert "DATABASE_URL='mysql://app:***@db.internal/app'" in message
    assert "database 'mysql' is not supported" in message


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"ANTHROPIC_API_KEY={ANT_1}\nANTHROPIC_RPM=20\nOPENAI_RPM=30\nRETENTION_DAYS=\n")
    settings = load_settings({"OPENAI_RPM": "40"}, env_file=env_file)
    assert [k.reveal() for k in settings.anthropic_keys] == [ANT_1]
    assert (settings.anthropic_rpm, settings.openai_rpm, settings.retention_days) == (20, 40, 14)


def test_upstash_variables_without_redis_url_say_what_to_set() -> None:
    env = {"UPSTASH_REDIS_REST_URL": "https://eu1-fond-kit-31337.upstash.io", "UPSTASH_REDIS_REST_TOKEN": "AXyzsecret"}
    with pytest.raises(ConfigError) as caught:
        load_settings(env, env_file=None)
    (problem,) = caught.value.problems
    assert "set REDIS_URL=rediss://default:<token>@eu1-fond-kit-31337.upstash.io:6379" in problem
    assert "AXyzsecret" not in problem
    settings = load_settings({**env, "REDIS_URL": "rediss://default:x@eu1-fond-kit-31337.upstash.io:6379"}, None)
    assert settings.redis_url is not None


@pytest.mark.parametrize(
    "url", ["redis+sentinel://:sentinel-secret@s1:26379/mymaster/0", "rediss+sentinel://:sentinel-secret@s1:26379/m"]
)
def test_a_sentinel_url_is_refused_by_name_with_what_to_set_instead(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"REDIS_URL": url}, env_file=None)
    (problem,) = caught.value.problems
    assert problem.startswith(f"REDIS_URL='{url.split(':')[0]}://:***@s1:26379/")
    assert problem.endswith(
        "(Redis Sentinel URLs are not supported: set REDIS_URL to the primary's redis:// or rediss:// URL, or use "
        "Redis Cluster (any one node's redis://host:port/0))"
    )
    assert "sentinel-secret" not in problem


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("postgres://app@db:5432/pulse", "postgresql+psycopg://app@db:5432/pulse"),
        ("postgresql://app@db/pulse", "postgresql+psycopg://app@db/pulse"),
        ("postgresql+psycopg://app@db/pulse", "postgresql+psycopg://app@db/pulse"),
        ("sqlite:////var/lib/pulse.db", "sqlite:////var/lib/pulse.db"),
    ],
)
def test_database_urls_from_hosts_pick_psycopg3(given: str, normalised: str) -> None:
    assert load_settings({"DATABASE_URL": given}, env_file=None).database_url == normalised


def test_base_urls_are_kept_without_trailing_slash() -> None:
    settings = load_settings(
        {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8700/", "OPENAI_BASE_URL": "http://127.0.0.1:8700/v1"}, None
    )
    assert settings.base_url(Provider.ANTHROPIC) == "http://127.0.0.1:8700"
    assert settings.base_url(Provider.OPENAI) == "http://127.0.0.1:8700/v1"


def test_nothing_that_holds_a_secret_prints_it() -> None:
    token = "admin-" + "t" * 30
    password = "dash-" + "p" * 20
    settings = load_settings(
        {
            "ANTHROPIC_API_KEY": ANT_1,
            "OPENAI_API_KEY": OAI_1,
            "ADMIN_TOKEN": token,
            "DASHBOARD_PASSWORD": password,
            "DATABASE_URL": "postgresql://app:db-secret@db/pulse",
            "REDIS_URL": "redis://:redis-secret@cache:6379/0",
            "MONITORING_WEBHOOK_URL": "https://hooks.example.invalid/services/T1/B2/hooksecret",
        },
        env_file=None,
    )
    shown = " ".join([repr(settings), str(settings), repr(settings.anthropic_keys), str(settings.describe())])
    for secret in (ANT_1, OAI_1, token, password, "db-secret", "redis-secret", "hooksecret"):
        assert secret not in shown
    assert "sk-ant-…p001" in shown and "postgresql+psycopg://app:***@db/pulse" in shown
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(settings.anthropic_keys[0])


def test_per_key_limits_period_and_price_file() -> None:
    settings = load_settings(
        {
            "OPENAI_KEY_RPM": "20",
            "ANTHROPIC_KEY_TPM": "9000",
            "RATE_LIMIT_PERIOD_S": "2.5",
            "PRICE_TABLE_FILE": "p.toml",
        },
        env_file=None,
    )
    assert settings.limits(Provider.OPENAI) == (100, None, 20, None)
    assert settings.limits(Provider.ANTHROPIC) == (50, None, None, 9000)
    assert (settings.rate_limit_period_s, settings.price_table_file) == (2.5, "p.toml")
    with pytest.raises(ConfigError, match=r"RATE_LIMIT_PERIOD_S='0': expected a positive number of seconds"):
        load_settings({"RATE_LIMIT_PERIOD_S": "0"}, env_file=None)


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "1e999"])
def test_a_bad_fallback_reserve_is_named_with_what_is_expected(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"FALLBACK_RESERVE_S": value}, env_file=None)
    assert caught.value.problems == [
        f"FALLBACK_RESERVE_S={value!r}: expected a finite number of seconds ≥ 0 (the part of a call's deadline kept "
        "for its fallback after a queue wait)"
    ]


def test_the_fallback_reserve_defaults_to_10_s_and_takes_fractions_and_zero() -> None:
    assert load_settings({}, env_file=None).fallback_reserve_s == 10.0
    assert load_settings({"FALLBACK_RESERVE_S": "2.5"}, env_file=None).fallback_reserve_s == 2.5
    assert load_settings({"FALLBACK_RESERVE_S": "0"}, env_file=None).fallback_reserve_s == 0.0
