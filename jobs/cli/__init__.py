"""The ``pulsegate`` command line (``commands.py``), ``pulsegate up`` and the demo. It starts the service in
``jobs.service``, which never imports it back. ``python -m jobs.cli`` is the same command as ``pulsegate``."""
