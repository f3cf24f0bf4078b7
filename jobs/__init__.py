"""The worker process and the ``pulsegate`` command line; depends on ``core``, never the other way."""
