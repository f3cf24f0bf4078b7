"""The CLI's own error, apart from the command modules so each can raise it without importing the parser.

``pulsegate.jobs.cli.commands.main`` prints any :class:`~pulsegate.core.errors.PulsegateError` as one line on stderr,
exit 2.
"""

from __future__ import annotations

from pulsegate.core.errors import PulsegateError


class CommandError(PulsegateError):
    """A CLI-level problem (a bad flag value or file) reported as one line."""
