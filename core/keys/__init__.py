"""Per-key health and key choice."""

from core.keys.health import DISABLING, KEY_FAILURES, HealthPolicy, KeyHealth, KeyStatus
from core.keys.pool import KeyChoice, KeyPool

__all__ = ["DISABLING", "KEY_FAILURES", "HealthPolicy", "KeyChoice", "KeyHealth", "KeyPool", "KeyStatus"]
