"""What operators do to running instances, each acting on an :class:`~core.instance.Instance` (never on the client
that wraps it): the heartbeat that reports an instance's state and applies control commands
(:mod:`core.ops.heartbeat`, :mod:`core.ops.control`), probes and the requests for them (:mod:`core.ops.probe`,
:mod:`core.ops.probe_history`, :mod:`core.ops.probe_requests`) and the health report built from what instances
reported (:mod:`core.ops.health_report`)."""
