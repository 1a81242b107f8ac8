"""The command's exit codes and the errors it prints as one line, without a traceback."""

from __future__ import annotations

OK = 0
RESET_FAILED = 1
REFUSED = 2  # a usage error, or something refused before or by AWS
INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C

EXIT_CODES = (
    f"Exit codes: {OK} done; {RESET_FAILED} the reset failed; {REFUSED} usage error or refused "
    f"(bad input, no Region or credentials, AWS refused); {INTERRUPTED} interrupted (Ctrl-C)."
)


class CliError(Exception):
    """A failure the user can act on: one line, and the exit code it ends with."""

    code = REFUSED


class Refused(CliError):
    """Nothing was done: bad usage or input, or AWS refused the call."""


class ResetFailed(CliError):
    code = RESET_FAILED


class Interrupted(CliError):
    code = INTERRUPTED
