"""The ``pulsegate`` command line (``commands.py``), ``pulsegate up`` and the demo. It starts the service in
``pulsegate.jobs.service``, which never imports it back. ``python -m pulsegate.jobs.cli`` is the same command as
``pulsegate``."""
