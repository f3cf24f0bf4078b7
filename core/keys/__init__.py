"""Per-key health and key choice."""

from pulsegate.core.keys.health import DISABLING, KEY_FAILURES, HealthPolicy, KeyHealth, KeyStatus
from pulsegate.core.keys.pool import KeyChoice, KeyPool

__all__ = ["DISABLING", "KEY_FAILURES", "HealthPolicy", "KeyChoice", "KeyHealth", "KeyPool", "KeyStatus"]
