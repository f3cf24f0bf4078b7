"""What may listen to the state machine: a :class:`Subscriber` is told of every state change the evaluator writes
(inside that transaction, so its own writes commit or roll back with it), and once more after all of an
evaluation's transitions, with the open episodes. Budget enforcement (:mod:`pulsegate.core.alerts.enforcement`) is one;
the engine itself knows nothing of what a subscriber does, only the control-command ids it reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from pulsegate.core.alerts.episode import Episode
from pulsegate.core.alerts.rules import Rule


class Subscriber(Protocol):
    def on_transition(
        self, connection: sa.Connection, before: Episode | None, after: Episode, rule: Rule | None, now: datetime
    ) -> list[int]:
        """``before`` → ``after`` changed state (opened, fired or resolved); ids of the control commands written."""
        ...

    def after_transitions(self, episodes: Iterable[Episode], now: datetime) -> list[int]:
        """Every transition of this evaluation is written; ``episodes`` are the open ones now."""
        ...
