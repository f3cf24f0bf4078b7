"""What operators do to running instances, each acting on an :class:`~pulsegate.core.instance.Instance` (never on the
client that wraps it): the heartbeat that reports an instance's state and applies control commands
(:mod:`pulsegate.core.ops.heartbeat`, :mod:`pulsegate.core.ops.control`), probes and the requests for them
(:mod:`pulsegate.core.ops.probe`, :mod:`pulsegate.core.ops.probe_history`, :mod:`pulsegate.core.ops.probe_requests`) and
the health report built from what instances reported (:mod:`pulsegate.core.ops.health_report`)."""
