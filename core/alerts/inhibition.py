"""Inhibition: while a provider-wide alert that names a cause (the provider overloaded, its breaker open, none of its
keys available) is open, that provider's per-key alerts are not notified — they are symptoms of it.

The rules (Alertmanager's inhibit rules are the model; ``Rule.inhibits`` says which rules are sources):

* **Sources** are open episodes of an inhibiting rule whose labels name a provider and no key. A *firing* source
  inhibits until it resolves (its ``keep_firing_for`` included). A *pending* one inhibits too, for at most its
  rule's ``for``: a provider-wide condition already breached is about to fire, and the per-key alerts it causes
  must not slip out in the meantime; if it clears instead, they are released.
* **Targets** are alerts with a ``key_label`` of the same provider. An inhibited target still changes state; it
  is sent neither firing nor repeat while inhibited.
* **Released**: a target still firing when its source resolves is sent then, as a firing message.
* **Started first**: a target notified before its source opened gets no repeat while inhibited; when it
  resolves, its resolved message is still sent (the receiver was told it fired, and is told it ended).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pulsegate.core.alerts.episode import Episode
from pulsegate.core.alerts.rules import Rule


def sources(episodes: Iterable[Episode], rules: Mapping[str, Rule], now: datetime) -> dict[str, str]:
    """provider → fingerprint of the oldest open episode inhibiting that provider's per-key alerts at ``now``."""
    found: dict[str, str] = {}
    for ep in sorted(episodes, key=lambda item: item.row_id):
        rule = rules.get(ep.rule_id)
        labels = ep.labels
        if rule is None or not rule.inhibits or not labels.get("provider") or labels.get("key_label"):
            continue
        if ep.state == "firing" or (ep.state == "pending" and now - ep.pending_since <= timedelta(seconds=rule.for_s)):
            found.setdefault(labels["provider"], ep.fingerprint)
    return found


def inhibited_by(labels: Mapping[str, str], inhibitors: Mapping[str, str]) -> str | None:
    """The fingerprint of the alert inhibiting an alert with these labels, if any (only per-key alerts are)."""
    if not labels.get("key_label"):
        return None
    return inhibitors.get(labels.get("provider", ""))
