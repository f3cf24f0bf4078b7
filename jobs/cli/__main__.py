"""``python -m pulsegate.jobs.cli …``: the ``pulsegate`` command, for child processes started with the running
interpreter."""

from pulsegate.jobs.cli.commands import main

raise SystemExit(main())
