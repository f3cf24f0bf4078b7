"""Masked forms and fingerprints: the only ways a secret is ever shown."""

from __future__ import annotations

import pytest

from pulsegate.core.masking import fingerprint, mask_dsn, mask_secret, mask_url


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-ant-api03-abcdefghijklmnopa1b2", "sk-ant-…a1b2"),
        ("sk-proj-abcdefghijklmnopqrstwxyz", "sk-proj-…wxyz"),
        ("sk-abcdefghijklmnop9876", "sk-…9876"),
        ("plain-token-value-1234", "…1234"),
        ("short", "…"),
        ("fifteen-chars-x", "…"),
    ],
)
def test_mask_secret(secret: str, masked: str) -> None:
    assert mask_secret(secret) == masked


def test_fingerprint_is_the_sha256_prefix_the_emulator_uses_too() -> None:
    assert fingerprint("test-key") == "62af8704764f"
    assert fingerprint("test-key") != fingerprint("test-key2")


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.slack.com/services/T1/B2/xyz", "https://hooks.slack.com/…"),
        ("http://127.0.0.1:9000/hook?token=abc", "http://127.0.0.1:9000/…"),
        ("https://example.invalid", "https://example.invalid"),
        ("not a url", "…"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_dsn_hides_only_the_password() -> None:
    assert mask_dsn("postgresql+psycopg://app:pw@db:5432/x") == "postgresql+psycopg://app:***@db:5432/x"
    assert mask_dsn("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert mask_dsn("sqlite:///data/x.db") == "sqlite:///data/x.db"
