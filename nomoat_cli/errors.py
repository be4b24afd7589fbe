"""One exception type for everything the CLI reports: a one-line message and the exit code it means."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    USAGE = 1  # bad arguments, a bad recipe or path: fix the command line
    API = 2  # the hub refused or failed (HTTP error, rejected upload, failed build)
    VERIFICATION = 3  # a download did not match its sha256
    NETWORK = 4  # the hub could not be reached, even after retries
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class CliError(Exception):
    """Raised anywhere; `main` prints `message` as one line and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the server sent
        self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class ApiError(CliError):
    """An HTTP error answer; `status` and the hub's stable `code` let callers react to specific ones."""

    def __init__(self, message: str, *, status: int, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, ExitCode.API)
        self.status = status
        self.code = code
        self.retry_after = retry_after  # seconds, from the answer's Retry-After header
