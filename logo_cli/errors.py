"""Typed errors. Each carries the exit code the CLI turns it into and a message that says what to do next."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The one table of exit statuses, the same for every command (documented in README.md)."""

    OK = 0
    ERROR = 1  # unexpected failure: a bug, please report it
    USAGE = 2  # bad arguments or options
    BAD_DATA = 3  # malformed input records
    NOT_FOUND = 4  # something to read is missing: a file, a user, global memory not built yet
    MODEL = 5  # a model file is missing, invalid or fails to load
    STORE = 6  # the store cannot be opened or was made by another embedder / a newer logo
    BUSY = 7  # another logo process holds the store and --wait ran out
    INTERRUPTED = 130  # Ctrl-C / SIGINT


class LogoError(Exception):
    """Base class: the library raises these, the CLI maps them to exit codes in one place."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class UsageError(LogoError):
    exit_code = ExitCode.USAGE


class BadRecord(LogoError):
    """A malformed input line: the message is `FILE:LINE: reason`."""

    exit_code = ExitCode.BAD_DATA

    def __init__(self, source: str, line: int, reason: str) -> None:
        super().__init__(
            f"{source}:{line}: {reason}",
            "Fix the line and run again (records before it are stored; a re-run adds only the rest), "
            "or pass --skip-invalid to report and skip bad lines.",
        )
        self.source = source
        self.line = line
        self.reason = reason


class NotFound(LogoError):
    exit_code = ExitCode.NOT_FOUND


class GlobalMemoryMissing(NotFound):
    def __init__(self) -> None:
        super().__init__(
            "No global memory yet.",
            "Run `logo build-global` after ingesting histories, or ask with --memory local / --memory none.",
        )


class ModelError(LogoError):
    exit_code = ExitCode.MODEL


class StoreError(LogoError):
    exit_code = ExitCode.STORE


class StoreBusy(LogoError):
    exit_code = ExitCode.BUSY
