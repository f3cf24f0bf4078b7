"""Masking of channel URLs and HMAC secrets in the text the dispatcher stores and logs.

A webhook URL is a credential (its path or query is the token), so every error string that reaches
``alert_deliveries``, ``alert_notifications`` or a log line passes through :func:`redact`, and httpx2's own
request log lines are masked by a filter installed once for the process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import httpx2

from pulsegate.core.alerts.channels import ChannelConfig
from pulsegate.core.masking import mask_secret, mask_url


def redact(text: str, channels: Iterable[ChannelConfig]) -> str:
    """``text`` with every channel URL (and its path and query alone) and secret replaced by masked forms."""
    for config in channels:
        url = config.url.get_secret_value()
        replacements = [(url, mask_url(url))]
        path, _, query = httpx2.URL(url).raw_path.decode("ascii", "replace").partition("?")
        if len(path) > 8:  # the path of a webhook URL is its token (a short one like /in is no secret)
            replacements.append((path, "/…"))
        if len(query) > 8:  # some receivers take the token as ?token=…
            replacements.append((query, "…"))
        if config.secret is not None:
            secret = config.secret.get_secret_value()
            replacements.append((secret, mask_secret(secret)))
        for secret_text, shown in replacements:
            if secret_text:
                text = text.replace(secret_text, shown)
    return text


class _RedactingFilter(logging.Filter):
    """httpx2 logs every request's full URL at INFO; a webhook URL is a credential, so it is masked there."""

    def __init__(self) -> None:
        super().__init__()
        self.channels: dict[str, ChannelConfig] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.channels and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                redact(str(a), self.channels.values()) if isinstance(a, str | httpx2.URL) else a for a in args
            )
        return True


_LOG_FILTER = _RedactingFilter()
logging.getLogger("httpx2").addFilter(_LOG_FILTER)


def redact_in_logs(channels: Mapping[str, ChannelConfig]) -> None:
    """Mask these channels' URLs and secrets in httpx2's log lines from now on (the filter is process-wide)."""
    _LOG_FILTER.channels.update(channels)
