"""The columns of every alert table: episodes (the Alerts page's tabs and the Overview's active alerts), the
delivery log, silences and the rules in force — one description, so the two pages show an episode alike."""

from __future__ import annotations

from pulsegate.dashboard.tables import Col

_EPISODE = {
    "severity": Col("Severity"),
    "rule_id": Col("Rule"),
    "labels": Col("Labels"),
    "summary": Col("Summary", help="What was measured, against the rule's threshold."),
}
_ID = {"id": Col("#", "count", help="The episode's number (the delivery log refers to it).")}
_PENDING_SINCE = {"pending_since": Col("Pending since (UTC)", "time")}
_FIRED = {"fired_at": Col("Fired (UTC)", "time")}
#: Firing and pending episodes on the Overview ("Active alerts"), with their state.
ACTIVE: dict[str, Col] = {"state": Col("State"), **_EPISODE, **_PENDING_SINCE, **_FIRED}
FIRING: dict[str, Col] = {**_ID, **_EPISODE, **_FIRED, "last_notified_at": Col("Last notified (UTC)", "time")}
PENDING: dict[str, Col] = {**_ID, **_EPISODE, **_PENDING_SINCE}
RESOLVED: dict[str, Col] = {**_ID, **_EPISODE, **_FIRED, "resolved_at": Col("Resolved (UTC)", "time")}
DELIVERIES: dict[str, Col] = {
    "ts": Col("Time (UTC)", "time"),
    "channel": Col("Channel"),
    "transition": Col("Message"),
    "attempt": Col("Try", "count"),
    "delivered": Col("Delivered", "flag"),
    "status_code": Col("HTTP", "count"),
    "error": Col("Error", width="large"),
    "episode_id": Col("Episode", "count"),
    "notification_id": Col("Notification", "count"),
}
SILENCES: dict[str, Col] = {
    "id": Col("#", "count"),
    "state": Col("State"),
    "matchers": Col("Matchers"),
    "starts": Col("Starts (UTC)", "time"),
    "ends": Col("Ends (UTC)", "time"),
    "expired": Col("Expired (UTC)", "time"),
    "by": Col("By"),
    "comment": Col("Comment", width="large"),
}
RULES: dict[str, Col] = {
    "id": Col("Rule"),
    "title": Col("Title"),
    "kind": Col("Kind"),
    "severity": Col("Severity"),
    "threshold": Col("Threshold", "number"),
    "unit": Col("Unit"),
    "window": Col("Window"),
    "for": Col("For"),
    "scope": Col("Scope"),
    "source": Col("Source"),
}
