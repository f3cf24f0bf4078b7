"""Alert channels: one module per webhook format (Slack, Discord, generic JSON), each rendering a Message to
exact bytes and classifying the receiver's answer; :func:`make_channel` picks the module for a config."""

from __future__ import annotations

from core.alerts.channels.base import Channel, DeliveryOutcome
from core.alerts.channels.config import ChannelConfig, ChannelConfigError, parse_channels

__all__ = ["Channel", "ChannelConfig", "ChannelConfigError", "DeliveryOutcome", "make_channel", "parse_channels"]


def make_channel(config: ChannelConfig) -> Channel:
    """The renderer/classifier for a channel's format."""
    if config.format == "slack":
        from core.alerts.channels.slack import SlackChannel

        return SlackChannel(config)
    if config.format == "discord":
        from core.alerts.channels.discord import DiscordChannel

        return DiscordChannel(config)
    from core.alerts.channels.webhook import GenericWebhookChannel

    return GenericWebhookChannel(config)
