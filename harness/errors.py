"""Errors the CLI turns into a one-line message and a non-zero exit code."""


class HarnessError(Exception):
    """A user-facing error: bad input, missing environment, failed precondition."""

    exit_code = 2
