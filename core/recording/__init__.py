"""Recording every attempt without slowing or breaking the call.

``SqlRecorder`` is imported on first use: an application that records elsewhere does not load SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pulsegate.core.recording.attempt import AttemptRecord, new_instance_id
from pulsegate.core.recording.base import NullRecorder, Recorder

__all__ = ["AttemptRecord", "NullRecorder", "Recorder", "SqlRecorder", "new_instance_id"]


def __getattr__(name: str) -> Any:
    if name == "SqlRecorder":
        from pulsegate.core.recording.sql import SqlRecorder

        return SqlRecorder
    raise AttributeError(f"module 'pulsegate.core.recording' has no attribute {name!r}")


if TYPE_CHECKING:
    from pulsegate.core.recording.sql import SqlRecorder
