"""Pulsegate's settings: one object, read once from the environment and an optional ``.env`` file.

Environment variables win over ``.env``; empty values count as unset. Invalid settings fail at start with ONE
:class:`~pulsegate.core.errors.ConfigError` listing every bad variable, its value (secrets masked) and what is expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pulsegate.core.api_keys import ApiKey, discover_keys
from pulsegate.core.errors import ConfigError
from pulsegate.core.masking import mask_dsn, mask_secret, mask_url
from pulsegate.core.provider import Provider

DEFAULT_DATABASE_URL = "sqlite:///./data/pulsegate.db"


def _expected(text: str, *, secret: bool = False, dsn: bool = False) -> dict[str, Any]:
    return {"expected": text, "secret": secret, "dsn": dsn}


class Settings(BaseSettings):
    """Every field is one environment variable (the upper-case field name); the README documents each."""

    model_config = SettingsConfigDict(
        alias_generator=str.upper,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    anthropic_base_url: str | None = Field(None, json_schema_extra=_expected("an http(s) URL"))
    openai_base_url: str | None = Field(None, json_schema_extra=_expected("an http(s) URL"))
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        json_schema_extra=_expected(
            "a database URL such as sqlite:///./data/pulsegate.db or postgresql+psycopg://user@host:5432/db",
            dsn=True,
        ),
    )
    redis_url: SecretStr | None = Field(
        None,
        json_schema_extra=_expected("a Redis URL such as redis://127.0.0.1:6379/0 or rediss://…", dsn=True),
    )
    monitoring_webhook_url: SecretStr | None = Field(
        None, json_schema_extra=_expected("an http(s) webhook URL", secret=True)
    )
    anthropic_rpm: int = Field(50, gt=0, json_schema_extra=_expected("a positive integer (requests per minute)"))
    openai_rpm: int = Field(100, gt=0, json_schema_extra=_expected("a positive integer (requests per minute)"))
    anthropic_tpm: int | None = Field(None, gt=0, json_schema_extra=_expected("a positive integer (tokens per minute)"))
    openai_tpm: int | None = Field(None, gt=0, json_schema_extra=_expected("a positive integer (tokens per minute)"))
    anthropic_key_rpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (requests per minute for each Anthropic key)")
    )
    anthropic_key_tpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (tokens per minute for each Anthropic key)")
    )
    openai_key_rpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (requests per minute for each OpenAI key)")
    )
    openai_key_tpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (tokens per minute for each OpenAI key)")
    )
    user_rpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (requests per minute for each user_id)")
    )
    user_tpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (tokens per minute for each user_id)")
    )
    feature_rpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (requests per minute for each feature tag)")
    )
    feature_tpm: int | None = Field(
        None, gt=0, json_schema_extra=_expected("a positive integer (tokens per minute for each feature tag)")
    )
    rate_limit_period_s: float = Field(
        60.0, gt=0, json_schema_extra=_expected("a positive number of seconds (the limits' period)")
    )
    price_table_file: str | None = Field(None, json_schema_extra=_expected("the path of a TOML price table"))
    admin_token: SecretStr | None = Field(
        None, min_length=16, json_schema_extra=_expected("a token of at least 16 characters", secret=True)
    )
    dashboard_password: SecretStr | None = Field(
        None, min_length=8, json_schema_extra=_expected("a password of at least 8 characters", secret=True)
    )
    retention_days: int = Field(14, gt=0, json_schema_extra=_expected("a positive integer (days)"))
    hash_user_ids: SecretStr | None = Field(
        None,
        min_length=16,
        json_schema_extra=_expected(
            "a secret of at least 16 characters (the key user ids are hashed with)", secret=True
        ),
    )
    heartbeat_interval_s: float = Field(
        5.0, gt=0, json_schema_extra=_expected("a positive number of seconds between state snapshots")
    )
    spool_dir: str = Field(
        "./data/spool", json_schema_extra=_expected("a folder for attempt rows waiting for the database")
    )

    worker_host: str = Field("127.0.0.1", min_length=1, json_schema_extra=_expected("a host name or IP to bind"))
    worker_port: int = Field(8600, ge=0, le=65535, json_schema_extra=_expected("a port number 0–65535"))
    gateway_host: str = Field("127.0.0.1", min_length=1, json_schema_extra=_expected("a host name or IP to bind"))
    gateway_port: int = Field(8800, ge=0, le=65535, json_schema_extra=_expected("a port number 0–65535"))
    gateway_max_body_mb: float = Field(
        32.0, gt=0, le=1024, json_schema_extra=_expected("megabytes a gateway request body may have (0–1024)")
    )
    leader_lease_s: float = Field(
        15.0, ge=1, json_schema_extra=_expected("seconds a worker's leadership lasts without renewal (≥ 1)")
    )
    probe_interval_s: float = Field(
        300.0, ge=5, json_schema_extra=_expected("seconds between scheduled probes of each key (≥ 5)")
    )
    anthropic_probe_interval_s: float | None = Field(
        None, ge=5, json_schema_extra=_expected("seconds between probes of each Anthropic key (≥ 5)")
    )
    openai_probe_interval_s: float | None = Field(
        None, ge=5, json_schema_extra=_expected("seconds between probes of each OpenAI key (≥ 5)")
    )
    anthropic_probe_model: str = Field(
        "claude-haiku-4-5", min_length=1, json_schema_extra=_expected("a cheap Anthropic model id for probes")
    )
    openai_probe_model: str = Field(
        "gpt-5-nano", min_length=1, json_schema_extra=_expected("a cheap OpenAI model id for probes")
    )
    probe_concurrency: int = Field(4, ge=1, le=64, json_schema_extra=_expected("an integer 1–64 (probes at once)"))
    probe_timeout_s: float = Field(30.0, gt=0, json_schema_extra=_expected("a positive number of seconds"))
    probe_auth_check: bool = Field(
        False, json_schema_extra=_expected("true or false (also check each key with the free models listing)")
    )
    alert_interval_s: float = Field(
        30.0, ge=1, json_schema_extra=_expected("seconds between alert rule evaluations (≥ 1)")
    )

    monitoring_webhook_format: str | None = Field(
        None,
        pattern="^(slack|discord|generic)$",
        json_schema_extra=_expected("slack, discord or generic (default: guessed from MONITORING_WEBHOOK_URL)"),
    )
    monitoring_webhook_secret: SecretStr | None = Field(
        None,
        min_length=16,
        json_schema_extra=_expected(
            "a secret of at least 16 characters (HMAC-SHA256 signature of generic webhooks)", secret=True
        ),
    )
    alert_rules_file: str | None = Field(
        None, json_schema_extra=_expected("the path of a TOML file of alert rules and channels")
    )
    dashboard_url: str | None = Field(
        None, json_schema_extra=_expected("the dashboard's public http(s) URL, linked from alerts")
    )
    alert_group_wait_s: float = Field(
        30.0, ge=0, json_schema_extra=_expected("seconds to gather alerts that start together into one message")
    )
    alert_repeat_interval_s: float = Field(
        14400.0, ge=60, json_schema_extra=_expected("seconds between reminders of an alert still firing (≥ 60)")
    )

    limit_tuning: bool = Field(
        True,
        json_schema_extra=_expected(
            "on or off (self-tuning limits: lower effective limits on 429s and low remaining quota, recover slowly)"
        ),
    )

    fallback_reserve_s: float = Field(
        10.0,
        ge=0,
        allow_inf_nan=False,
        json_schema_extra=_expected(
            "a finite number of seconds ≥ 0 (the part of a call's deadline kept for its fallback after a queue wait)"
        ),
    )

    redis_local_share: float = Field(
        1.0,
        gt=0,
        le=1,
        json_schema_extra=_expected(
            "a number in (0, 1]: the share of each limit one app server takes while Redis is unreachable"
        ),
    )

    anthropic_keys: tuple[ApiKey, ...] = Field((), exclude=True)
    openai_keys: tuple[ApiKey, ...] = Field((), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges the environment and .env itself, because key discovery must read the same view.
        return (init_settings,)

    @field_validator("anthropic_base_url", "openai_base_url", "dashboard_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @field_validator("monitoring_webhook_url")
    @classmethod
    def _webhook_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("not an http(s) URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if "sentinel" in parts.scheme:
                raise ValueError(
                    "Redis Sentinel URLs are not supported: set REDIS_URL to the primary's redis:// or rediss:// "
                    "URL, or use Redis Cluster (any one node's redis://host:port/0)"
                )
            if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
                raise ValueError("not a Redis URL")
        return value

    def __repr_args__(self) -> list[tuple[str | None, object]]:
        return [(name, _shown_value(name, getattr(self, name))) for name in type(self).model_fields]

    def keys(self, provider: Provider) -> tuple[ApiKey, ...]:
        return self.anthropic_keys if provider is Provider.ANTHROPIC else self.openai_keys

    def limits(self, provider: Provider) -> tuple[int, int | None, int | None, int | None]:
        """(rpm, tpm, per-key rpm, per-key tpm) for one provider."""
        if provider is Provider.ANTHROPIC:
            return self.anthropic_rpm, self.anthropic_tpm, self.anthropic_key_rpm, self.anthropic_key_tpm
        return self.openai_rpm, self.openai_tpm, self.openai_key_rpm, self.openai_key_tpm

    def base_url(self, provider: Provider) -> str | None:
        return self.anthropic_base_url if provider is Provider.ANTHROPIC else self.openai_base_url

    def describe(self) -> dict[str, object]:
        """The settings as safe to show: secrets masked, keys as label + masked form + fingerprint."""
        shown: dict[str, object] = {}
        for name, info in type(self).model_fields.items():
            if info.exclude:
                continue
            shown[name.upper()] = _shown_value(name, getattr(self, name))
        for provider in Provider:
            shown[f"{provider.value} keys"] = [
                {"label": k.label, "masked": k.masked, "fingerprint": k.fingerprint} for k in self.keys(provider)
            ]
        return shown


def normalise_database_url(url: str) -> str:
    """Accept the URL forms hosts hand out (``postgres://``, ``postgresql://``) and pick the psycopg 3 driver."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2") or "+" not in parsed.drivername:
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif parsed.get_driver_name() != "psycopg":
            raise ValueError(f"driver {parsed.get_driver_name()!r} is not supported; use postgresql+psycopg://")
    elif backend != "sqlite":
        raise ValueError(f"database {backend!r} is not supported; use SQLite or PostgreSQL")
    return parsed.render_as_string(hide_password=False)


def _shown_value(name: str, value: object) -> object:
    extra = Settings.model_fields[name].json_schema_extra or {}
    if value is None:
        return None
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if isinstance(extra, dict) and extra.get("dsn"):
        return mask_dsn(str(raw))
    if isinstance(extra, dict) and extra.get("secret"):
        return mask_url(str(raw)) if "://" in str(raw) else mask_secret(str(raw))
    return raw


def _shown_input(name: str, value: object) -> str:
    """A bad input as it may appear in an error message."""
    if name not in Settings.model_fields:
        return repr(value)
    shown = _shown_value(name, SecretStr(str(value)) if value is not None else None)
    return repr(shown)


def read_environment(environ: Mapping[str, str] | None = None, env_file: Path | str | None = ".env") -> dict[str, str]:
    """The merged view Pulsegate reads: ``.env`` (if present) overlaid by the process environment."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return {k: v for k, v in merged.items() if v.strip() != ""}


def _upstash_problems(env: Mapping[str, str]) -> list[str]:
    rest_url = env.get("UPSTASH_REDIS_REST_URL")
    if not rest_url and not env.get("UPSTASH_REDIS_REST_TOKEN"):
        return []
    if env.get("REDIS_URL"):
        return []
    host = urlsplit(rest_url).hostname if rest_url else None
    host = host or "<your-db>.upstash.io"
    return [
        "UPSTASH_REDIS_REST_URL / UPSTASH_REDIS_REST_TOKEN are set but Pulsegate speaks the Redis protocol, not "
        f"Upstash's REST API: set REDIS_URL=rediss://default:<token>@{host}:6379 (Upstash offers that endpoint; "
        "<token> is your UPSTASH_REDIS_REST_TOKEN) and remove the UPSTASH_* variables"
    ]


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | str | None = ".env") -> Settings:
    """Build :class:`Settings` or raise one :class:`ConfigError` naming every problem."""
    env = read_environment(environ, env_file)
    problems: list[str] = []
    fields: dict[str, str] = {}
    for name in Settings.model_fields:
        if name.endswith("_keys"):
            continue
        if name.upper() in env:
            fields[name] = env[name.upper()]

    anthropic_keys, key_problems = discover_keys(env, Provider.ANTHROPIC)
    problems += key_problems
    openai_keys, key_problems = discover_keys(env, Provider.OPENAI)
    problems += key_problems
    problems += _upstash_problems(env)

    settings: Settings | None = None
    try:
        settings = Settings(**fields, anthropic_keys=anthropic_keys, openai_keys=openai_keys)
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            name = str(error["loc"][0]) if error["loc"] else "?"
            name = name.lower()
            extra = Settings.model_fields[name].json_schema_extra if name in Settings.model_fields else None
            expected = extra.get("expected", error["msg"]) if isinstance(extra, dict) else error["msg"]
            reason = ""
            if error["type"] == "value_error":
                reason = " (" + str(error["msg"]).removeprefix("Value error, ") + ")"
            problems.append(f"{name.upper()}={_shown_input(name, fields.get(name))}: expected {expected}{reason}")
    if problems or settings is None:
        raise ConfigError(sorted(set(problems), key=problems.index))
    return settings
