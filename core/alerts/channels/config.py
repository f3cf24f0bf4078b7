"""Which webhooks alerts go to: one :class:`ChannelConfig` per channel, parsed from the alert TOML and settings.

A webhook URL carries its own credential (anyone holding it may post), so it is a :class:`SecretStr` from the
moment it is read and every error here shows only its masked form. ``url_env`` / ``secret_env`` name an
environment variable instead, which keeps the secret out of the TOML file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from pulsegate.core.errors import ConfigError
from pulsegate.core.masking import mask_url

if TYPE_CHECKING:
    from pulsegate.core.settings import Settings

ChannelFormat = Literal["slack", "discord", "generic"]
FORMATS: tuple[ChannelFormat, ...] = ("slack", "discord", "generic")
SEVERITIES: frozenset[str] = frozenset({"info", "warning", "critical"})
DEFAULT_CHANNEL = "default"
DEFAULT_TIMEOUT_S = 10.0
MIN_SECRET_LEN = 16
_KNOWN_KEYS = frozenset({"name", "format", "url", "url_env", "secret_env", "severities", "timeout_s"})
_NAME_MAX = 64  # alert_notifications.channel is String(64)


class ChannelConfigError(ConfigError):
    """A ``[[channels]]`` entry (or the default channel) cannot be used; each problem names channel and field."""

    def __init__(self, problems: list[str], source: str = "alert channels") -> None:
        super().__init__(problems, source)


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One destination for alert messages."""

    name: str
    format: ChannelFormat
    url: SecretStr
    secret: SecretStr | None = None  # generic only: HMAC-SHA256 of the body in X-Pulsegate-Signature
    severities: frozenset[str] = field(default=SEVERITIES)  # routing: which severities go here (default all)
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def masked_url(self) -> str:
        """The URL as it may be shown: scheme and host only."""
        return mask_url(self.url.get_secret_value())

    def accepts(self, severity: str) -> bool:
        """Whether an alert of ``severity`` is routed to this channel."""
        return severity in self.severities

    def __repr__(self) -> str:
        return (
            f"ChannelConfig(name={self.name!r}, format={self.format!r}, url={self.masked_url!r}, "
            f"secret={'set' if self.secret else None}, severities={sorted(self.severities)!r}, "
            f"timeout_s={self.timeout_s!r})"
        )

    __str__ = __repr__


def guess_format(url: str) -> ChannelFormat:
    """Slack and Discord webhooks are recognised by host and path; anything else gets the generic JSON."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "hooks.slack.com" or host.endswith(".hooks.slack.com"):
        return "slack"
    discord_hosts = ("discord.com", "discordapp.com", "ptb.discord.com", "canary.discord.com")
    if host in discord_hosts and parts.path.startswith("/api/webhooks/"):
        return "discord"
    return "generic"


def parse_channels(
    raw: Sequence[Mapping[str, Any]],
    settings: Settings,
    *,
    environ: Mapping[str, str] | None = None,
) -> tuple[ChannelConfig, ...]:
    """Channels from TOML ``[[channels]]`` entries, plus ``default`` from ``MONITORING_WEBHOOK_URL``.

    ``environ`` is where ``url_env`` / ``secret_env`` are looked up (default: the process environment overlaid
    on ``.env``, as settings read it). Raises one :class:`ChannelConfigError` listing every problem.
    """
    if environ is None:
        from pulsegate.core.settings import read_environment

        environ = read_environment()
    problems: list[str] = []
    channels: list[ChannelConfig] = []
    seen: set[str] = set()

    default = _default_channel(settings)
    if default is not None:
        channels.append(default)
        seen.add(default.name)

    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise ChannelConfigError(["channels: expected a list of [[channels]] tables"])
    for index, entry in enumerate(raw):
        channel = _parse_one(index, entry, environ, problems)
        if channel is None:
            continue
        if channel.name in seen:
            if default is not None and channel.name == DEFAULT_CHANNEL:
                problems.append(
                    "channel 'default': name: reserved for MONITORING_WEBHOOK_URL, which is set; pick another name"
                )
            else:
                problems.append(f"channel {channel.name!r}: name: defined twice")
            continue
        seen.add(channel.name)
        channels.append(channel)
    if problems:
        raise ChannelConfigError(problems)
    return tuple(channels)


def _default_channel(settings: Settings) -> ChannelConfig | None:
    if settings.monitoring_webhook_url is None:
        return None
    url = settings.monitoring_webhook_url.get_secret_value()
    fmt = settings.monitoring_webhook_format or guess_format(url)
    secret = settings.monitoring_webhook_secret
    if secret is not None and fmt != "generic":
        # Slack and Discord do not verify signatures; sending one would only spread the secret.
        secret = None
    return ChannelConfig(
        name=DEFAULT_CHANNEL,
        format=fmt,  # type: ignore[arg-type]  # settings' pattern guarantees one of FORMATS
        url=SecretStr(url),
        secret=secret,
    )


def _parse_one(
    index: int, entry: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]
) -> ChannelConfig | None:
    where = f"channels[{index}]"
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: expected a table with name, format, url or url_env")
        return None
    before = len(problems)

    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{where}: name: required, a non-empty string")
        return None
    name = name.strip()
    if len(name) > _NAME_MAX:
        problems.append(f"channel {name[:20]!r}…: name: at most {_NAME_MAX} characters")
        return None
    label = f"channel {name!r}"

    for key in sorted(set(entry) - _KNOWN_KEYS):
        problems.append(f"{label}: {key}: unknown field (expected one of {', '.join(sorted(_KNOWN_KEYS))})")

    url = _read_url(label, entry, environ, problems)

    fmt = entry.get("format")
    if fmt is not None and fmt not in FORMATS:
        problems.append(f"{label}: format: {fmt!r} is not one of slack, discord, generic")
        fmt = None
    if fmt is None and url is not None:
        fmt = guess_format(url)

    secret: SecretStr | None = None
    secret_env = entry.get("secret_env")
    if secret_env is not None:
        if not isinstance(secret_env, str) or not secret_env:
            problems.append(f"{label}: secret_env: expected the name of an environment variable")
        elif not environ.get(secret_env, "").strip():
            problems.append(f"{label}: secret_env: environment variable {secret_env} is not set")
        elif len(environ[secret_env].strip()) < MIN_SECRET_LEN:
            problems.append(f"{label}: secret_env: {secret_env} must hold at least {MIN_SECRET_LEN} characters")
        elif fmt is not None and fmt != "generic":
            problems.append(f"{label}: secret_env: only generic webhooks are signed (format is {fmt})")
        else:
            secret = SecretStr(environ[secret_env].strip())

    severities = _read_severities(label, entry.get("severities"), problems)
    timeout_s = _read_timeout(label, entry.get("timeout_s", DEFAULT_TIMEOUT_S), problems)

    if len(problems) > before or url is None or fmt is None:
        return None
    return ChannelConfig(
        name=name, format=fmt, url=SecretStr(url), secret=secret, severities=severities, timeout_s=timeout_s
    )


def _read_url(label: str, entry: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]) -> str | None:
    url, url_env = entry.get("url"), entry.get("url_env")
    if url is not None and url_env is not None:
        problems.append(f"{label}: url: give url or url_env, not both")
        return None
    if url is None and url_env is None:
        problems.append(f"{label}: url: required (or url_env, the name of an environment variable holding it)")
        return None
    if url_env is not None:
        if not isinstance(url_env, str) or not url_env:
            problems.append(f"{label}: url_env: expected the name of an environment variable")
            return None
        url = environ.get(url_env, "").strip()
        if not url:
            problems.append(f"{label}: url_env: environment variable {url_env} is not set")
            return None
        field_name = f"url_env ({url_env})"
    else:
        if not isinstance(url, str):
            problems.append(f"{label}: url: expected a string")
            return None
        url = url.strip()
        field_name = "url"
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        problems.append(f"{label}: {field_name}: {mask_url(url)!r} is not an http(s) URL")
        return None
    return url


def _read_severities(label: str, value: Any, problems: list[str]) -> frozenset[str]:
    if value is None:
        return SEVERITIES
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or not all(isinstance(v, str) for v in value):
        problems.append(f"{label}: severities: expected a non-empty list of info, warning, critical")
        return SEVERITIES
    unknown = sorted(set(value) - SEVERITIES)
    if unknown:
        problems.append(f"{label}: severities: {', '.join(map(repr, unknown))} not one of info, warning, critical")
        return SEVERITIES
    return frozenset(value)


def _read_timeout(label: str, value: Any, problems: list[str]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.append(f"{label}: timeout_s: expected a number of seconds")
        return DEFAULT_TIMEOUT_S
    if not 0 < value <= 120:
        problems.append(f"{label}: timeout_s: {value} is not within 0 < timeout_s ≤ 120")
        return DEFAULT_TIMEOUT_S
    return float(value)
