"""The kit's one exception: a message for the DBA and the exit code it maps to."""

from __future__ import annotations

#: exit codes of ``python -m mesdb``
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONNECT = 0, 1, 2, 3


class KitError(Exception):
    """Something the DBA must act on; ``exit_code`` is what the CLI returns."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code
