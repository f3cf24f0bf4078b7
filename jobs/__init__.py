"""The worker service (``jobs.service``) and the ``pulsegate`` command line (``jobs.cli``); depends on ``core``, never
the other way."""
