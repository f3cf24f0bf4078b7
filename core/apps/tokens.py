"""Gateway tokens: made once, shown once, stored only as a hash.

A token is ``pgw_`` and 40 random URL-safe characters (240 bits), so a plain SHA-256 is a safe thing to store: there is
no dictionary to try against a hash of random bits, and no salt or slow hash is needed. The first 12 characters
(``pgw_`` and 8 more) are its **prefix**, how lists and logs name it. Lookups go by hash and the final comparison is
constant-time, so neither a timing nor a partial match tells a caller anything.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_PREFIX = "pgw_"  # noqa: S105 — the public marker of a token, not a secret
PREFIX_LENGTH = 12
_RANDOM_CHARACTERS = 40


def new_token() -> str:
    """A fresh token (never stored: only :func:`token_hash` of it is)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(30)[:_RANDOM_CHARACTERS]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_prefix(token: str) -> str:
    return token[:PREFIX_LENGTH]


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def looks_like_token(value: str) -> bool:
    """Cheap shape check before hashing: the right prefix and length, nothing else."""
    return value.startswith(TOKEN_PREFIX) and len(value) == len(TOKEN_PREFIX) + _RANDOM_CHARACTERS
