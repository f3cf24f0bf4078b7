"""The worker service (``pulsegate.jobs.service``) and the ``pulsegate`` command line (``pulsegate.jobs.cli``); depends
on ``core``, never the other way."""
