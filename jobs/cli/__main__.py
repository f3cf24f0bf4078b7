"""``python -m jobs.cli …``: the ``pulsegate`` command, for child processes started with the running interpreter."""

from jobs.cli.commands import main

raise SystemExit(main())
