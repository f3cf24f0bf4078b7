"""One call, from its plan to its rows: :class:`CallRunner` runs a call's attempts, :class:`Call` is one call as
one object (``async with runner.call(ctx) as call``). Its rooms: ``plan``, ``admission``, ``attempt``,
``pacing``, ``settle``, ``rows`` — and ``policy``, what each error class means for the rest of a call."""

from core.call.context import CallContext, Lease
from core.call.runner import Call, CallRunner

__all__ = ["Call", "CallContext", "CallRunner", "Lease"]
