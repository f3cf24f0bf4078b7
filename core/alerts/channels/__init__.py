"""Alert channels: one module per webhook format (Slack, Discord, generic JSON), each rendering a Message to
exact bytes and classifying the receiver's answer; :func:`make_channel` picks the module for a config."""

from __future__ import annotations

from pulsegate.core.alerts.channels.base import Channel, DeliveryOutcome
from pulsegate.core.alerts.channels.config import ChannelConfig, ChannelConfigError, parse_channels

__all__ = ["Channel", "ChannelConfig", "ChannelConfigError", "DeliveryOutcome", "make_channel", "parse_channels"]


def make_channel(config: ChannelConfig) -> Channel:
    """The renderer/classifier for a channel's format."""
    if config.format == "slack":
        from pulsegate.core.alerts.channels.slack import SlackChannel

        return SlackChannel(config)
    if config.format == "discord":
        from pulsegate.core.alerts.channels.discord import DiscordChannel

        return DiscordChannel(config)
    from pulsegate.core.alerts.channels.webhook import GenericWebhookChannel

    return GenericWebhookChannel(config)
