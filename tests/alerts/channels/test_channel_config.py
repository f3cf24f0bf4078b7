"""parse_channels: TOML entries and MONITORING_WEBHOOK_URL become ChannelConfigs, or one clear error."""

from __future__ import annotations

import pytest

from pulsegate.core.alerts.channels.config import (
    SEVERITIES,
    ChannelConfig,
    ChannelConfigError,
    guess_format,
    parse_channels,
)
from pulsegate.core.errors import ConfigError
from pulsegate.core.settings import load_settings

SLACK_URL = "https://hooks.slack.com/services/T0A/B0B/SeCrEtSlackPath123"
DISCORD_URL = "https://discord.com/api/webhooks/123/SeCrEtDiscordToken456"


def _settings(**env: str):
    return load_settings(env, env_file=None)


def _error(raw, settings=None, environ=None) -> list[str]:
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels(raw, settings or _settings(), environ=environ or {})
    assert isinstance(caught.value, ConfigError)
    return caught.value.problems


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        (SLACK_URL, "slack"),
        (DISCORD_URL, "discord"),
        ("https://discordapp.com/api/webhooks/1/x", "discord"),
        ("https://discord.com/channels/1/2", "generic"),
        ("https://example.com/hooks/slack", "generic"),
        ("http://127.0.0.1:9000/services/T/B/x", "generic"),
    ],
)
def test_format_is_guessed_from_the_url(url: str, fmt: str) -> None:
    assert guess_format(url) == fmt


def test_default_channel_from_monitoring_webhook_settings() -> None:
    (default,) = parse_channels([], _settings(MONITORING_WEBHOOK_URL=SLACK_URL), environ={})
    assert (default.name, default.format, default.url.get_secret_value(), default.secret) == (
        "default",
        "slack",
        SLACK_URL,
        None,
    )
    assert default.severities == SEVERITIES and default.timeout_s == 10.0

    settings = _settings(
        MONITORING_WEBHOOK_URL="http://127.0.0.1:9000/services/T/B/x",
        MONITORING_WEBHOOK_FORMAT="slack",
    )
    assert parse_channels([], settings, environ={})[0].format == "slack"  # the override wins (loopback receivers)

    signed = _settings(MONITORING_WEBHOOK_URL="https://alerts.example.com/in", MONITORING_WEBHOOK_SECRET="s" * 20)
    assert parse_channels([], signed, environ={})[0].secret.get_secret_value() == "s" * 20
    assert parse_channels([], _settings(), environ={}) == ()


def test_toml_channels_with_url_env_secret_env_and_routing() -> None:
    raw = [
        {"name": "pager", "url_env": "PAGER_URL", "severities": ["critical"], "timeout_s": 5},
        {"name": "audit", "format": "generic", "url": "https://audit.example.com/in", "secret_env": "AUDIT_SECRET"},
    ]
    environ = {"PAGER_URL": DISCORD_URL, "AUDIT_SECRET": "a-long-enough-secret"}
    pager, audit = parse_channels(raw, _settings(), environ=environ)
    assert pager == ChannelConfig(
        name="pager",
        format="discord",
        url=pager.url,
        severities=frozenset({"critical"}),
        timeout_s=5.0,
    )
    assert pager.url.get_secret_value() == DISCORD_URL
    assert pager.accepts("critical") and not pager.accepts("warning")
    assert audit.format == "generic" and audit.secret.get_secret_value() == "a-long-enough-secret"


def test_every_problem_names_the_channel_and_field_and_never_the_secret() -> None:
    raw = [
        {"name": "a", "url": "ftp://files.example.com/SeCrEtPath"},
        {"name": "b", "url_env": "MISSING"},
        {"name": "c", "url": SLACK_URL, "format": "teams", "colour": "red"},
        {"name": "d", "url": SLACK_URL, "url_env": "X"},
        {"name": "e", "url": SLACK_URL, "severities": ["critical", "page"]},
        {"name": "f", "url": SLACK_URL, "timeout_s": 0},
        {"name": "g", "url": SLACK_URL, "secret_env": "SHORT"},
        {"name": "h", "url": SLACK_URL, "secret_env": "LONG"},
        {"url": SLACK_URL},
        {"name": "i", "url": SLACK_URL},
        {"name": "i", "url": SLACK_URL},
    ]
    problems = _error(raw, environ={"SHORT": "abc", "LONG": "x" * 20})
    assert problems == [
        "channel 'a': url: 'ftp://files.example.com/…' is not an http(s) URL",
        "channel 'b': url_env: environment variable MISSING is not set",
        "channel 'c': colour: unknown field (expected one of format, name, secret_env, severities, timeout_s, "
        "url, url_env)",
        "channel 'c': format: 'teams' is not one of slack, discord, generic",
        "channel 'd': url: give url or url_env, not both",
        "channel 'e': severities: 'page' not one of info, warning, critical",
        "channel 'f': timeout_s: 0 is not within 0 < timeout_s ≤ 120",
        "channel 'g': secret_env: SHORT must hold at least 16 characters",
        "channel 'h': secret_env: only generic webhooks are signed (format is slack)",
        "channels[8]: name: required, a non-empty string",
        "channel 'i': name: defined twice",
    ]
    assert "SeCrEt" not in "\n".join(problems)


def test_default_name_is_reserved_when_monitoring_webhook_url_is_set() -> None:
    problems = _error([{"name": "default", "url": DISCORD_URL}], _settings(MONITORING_WEBHOOK_URL=SLACK_URL))
    assert problems == ["channel 'default': name: reserved for MONITORING_WEBHOOK_URL, which is set; pick another name"]


def test_repr_and_str_show_the_url_masked() -> None:
    (channel,) = parse_channels([{"name": "x", "url": SLACK_URL}], _settings(), environ={})
    assert "SeCrEt" not in repr(channel) and "SeCrEt" not in str(channel)
    assert channel.masked_url == "https://hooks.slack.com/…"
