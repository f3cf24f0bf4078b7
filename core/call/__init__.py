"""One call, from its plan to its rows: :class:`~pulsegate.core.call.runner.CallRunner` runs a call's attempts,
:class:`~pulsegate.core.call.runner.Call` is one call as one object (``async with runner.call(ctx) as call``). Its
rooms: ``context`` (what a call and an attempt carry), ``plan``, ``admission``, ``attempt``, ``pacing``, ``settle``,
``rows`` — and ``policy``, what each error class means for the rest of a call.

Nothing is re-exported here: the runner imports the provider SDKs, and code that only names a call's context (the
operators' rooms, the dashboard through them) must not load them.
"""
