"""User-facing errors.

Every problem caused by the user's input (a file, a key, a value, a flag) is raised as a
:class:`CodesignError` whose message names what was wrong and what was expected. The CLI turns
it into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations


class CodesignError(ValueError):
    """Bad user input: the message names the file, the key and what was expected."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`CodesignError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CodesignError(message)
