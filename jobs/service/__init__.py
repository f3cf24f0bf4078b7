"""The worker service: the process that probes keys, runs the scheduled jobs under a leader election and serves the
HTTP API (health, admin actions, Prometheus metrics). Imports ``core``; never the command line in
``pulsegate.jobs.cli``."""
