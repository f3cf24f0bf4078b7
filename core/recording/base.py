"""The recorder contract: the call path hands each attempt over and forgets it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pulsegate.core.recording.attempt import AttemptRecord

if TYPE_CHECKING:
    import sqlalchemy as sa


class Recorder(Protocol):
    #: The store the attempts go to (None: recorded nowhere): the client's heartbeat writes its state snapshots there.
    engine: sa.Engine | None

    def record(self, attempt: AttemptRecord) -> None:
        """Never blocks, never raises."""

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Write what is buffered; True when the buffer is empty afterwards."""

    def close(self, timeout_s: float = 10.0) -> None: ...

    def stats(self) -> dict[str, int]: ...


class NullRecorder:
    """Records nothing (a client built without a store)."""

    engine: sa.Engine | None = None

    def record(self, attempt: AttemptRecord) -> None:
        return None

    def flush(self, timeout_s: float = 10.0) -> bool:
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"buffered": 0, "written": 0, "dropped": 0, "write_failures": 0}
