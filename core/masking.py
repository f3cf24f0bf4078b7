"""How secrets are shown: never whole.

API keys, webhook URLs, tokens and database passwords reach logs, rows, pages and error messages only as a
masked form or a fingerprint. Both are computed here so every part of Pulsegate shows the same thing.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

_KNOWN_PREFIX = re.compile(r"^(sk-ant-|sk-proj-|sk-svcacct-|sk-admin-|sk-)")
_MIN_LEN_TO_SHOW_TAIL = 16


def fingerprint(secret: str) -> str:
    """A stable 12-hex-digit id for a secret (sha256 prefix): enough to tell keys apart, useless to call with.

    The emulator computes the same value, so its per-key stats line up with Pulsegate's rows.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def mask_secret(secret: str) -> str:
    """``sk-ant-api03-…a1b2`` → ``sk-ant-…a1b2``: the vendor prefix and the last four characters only."""
    if len(secret) < _MIN_LEN_TO_SHOW_TAIL:
        return "…"
    match = _KNOWN_PREFIX.match(secret)
    prefix = match.group(1) if match else ""
    return f"{prefix}…{secret[-4:]}"


def mask_url(url: str) -> str:
    """Keep scheme and host, hide credentials, path and query (a webhook URL's path is its secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "…"
    if not parts.scheme or not parts.hostname:
        return "…"
    host = parts.hostname
    if parts.port:
        host = f"{host}:{parts.port}"
    path = "/…" if parts.path not in ("", "/") or parts.query else ""
    return urlunsplit((parts.scheme, host, path, "", ""))


def mask_dsn(url: str) -> str:
    """A database or Redis URL with its password replaced by ``***`` (user, host, port and name stay)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "…"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


_KEY_LIKE = re.compile(r"\b(?:sk-[A-Za-z0-9_\-*]{8,}|Bearer\s+\S+)")


def scrub(text: str) -> str:
    """Replace anything shaped like a key or bearer token in free text (a provider's error message quotes the
    key it refused) with its masked form."""
    return _KEY_LIKE.sub(lambda m: "Bearer …" if m.group(0).startswith("Bearer") else mask_secret(m.group(0)), text)
