"""The launcher's one error type: a one-line message that says what went wrong and what to do."""

from __future__ import annotations


class LauncherError(Exception):
    """A failure of `player-sessions db`; `str()` is the line shown to the user."""

    def __init__(self, message: str, hint: str = "", details: str = "") -> None:
        self.message = message
        self.hint = hint
        # Multi-line context (e.g. the node's last log lines), shown under the one-line error.
        self.details = details
        super().__init__(f"{message}: {hint}" if hint else message)
