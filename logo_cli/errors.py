"""Typed errors. Each carries the exit code the CLI turns it into and a message that says what to do next."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The one table of exit statuses, the same for every command. `--help`'s epilog and the README's table
    are both written from `MEANING` (a test holds the README to it)."""

    OK = 0
    ERROR = 1
    USAGE = 2
    BAD_DATA = 3
    NOT_FOUND = 4
    MODEL = 5
    STORE = 6
    BUSY = 7
    CHECK_FAILED = 8
    DENIED = 9
    INTERRUPTED = 130
    PIPE = 141

    @property
    def short(self) -> str:
        return SHORT[self]

    @property
    def meaning(self) -> str:
        return MEANING[self]


SHORT = {
    ExitCode.OK: "ok",
    ExitCode.ERROR: "bug",
    ExitCode.USAGE: "usage",
    ExitCode.BAD_DATA: "bad data",
    ExitCode.NOT_FOUND: "not found",
    ExitCode.MODEL: "model",
    ExitCode.STORE: "store",
    ExitCode.BUSY: "busy",
    ExitCode.CHECK_FAILED: "check failed",
    ExitCode.DENIED: "denied",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.PIPE: "output closed",
}
MEANING = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "unexpected error (a bug: please report it with the traceback)",
    ExitCode.USAGE: 'usage: a bad option or argument (`--memory all`, `--at "last tuesday"`, no `--user`), or a '
    "bad `config.toml`",
    ExitCode.BAD_DATA: "bad input data: a malformed record, reported as `FILE:LINE: reason`",
    ExitCode.NOT_FOUND: "not found: a missing input file, a user with no records, no store yet (run `logo ingest`), "
    "or no global memory yet (run `logo build-global`)",
    ExitCode.MODEL: "model: a model file is missing, is not a GGUF, or fails to load; or the `--llm-url` server is "
    "unreachable, fails, or can't score candidates",
    ExitCode.STORE: "store: the store cannot be opened (or the `--chroma-url` server is unreachable), was made by "
    "another embedder, or by a newer logo; or Spark cannot start (`--engine spark`: no pyspark, no Java, an "
    "unreachable master)",
    ExitCode.BUSY: "busy: another logo process was still using the store when `--wait` ran out, or the `--server` "
    "was too busy (HTTP 503) or its time limit stopped the answer",
    ExitCode.CHECK_FAILED: "a check failed: `logo doctor` found something broken (its output says what)",
    ExitCode.DENIED: "denied: the `--server` refused the token (`LOGO_TOKEN` missing, unknown or revoked) or what "
    "it asked (another user's memory with a user's token, `users` without the admin's)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.PIPE: "output closed early by its reader (as `head` does): SIGPIPE's status",
}


def exit_codes_line() -> str:
    """One line for `--help`: `Exit codes: 0 ok, 1 bug, ...`."""
    return "Exit codes: " + ", ".join(f"{int(c)} {c.short}" for c in ExitCode) + "."


def exit_codes_table() -> str:
    """The README's Markdown table."""
    rows = [f"| {int(c)} | {c.meaning} |" for c in ExitCode]
    return "\n".join(["| code | meaning |", "| --- | --- |", *rows])


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


INGEST_HINT = (
    "Fix the line and run again (records before it are stored; a re-run adds only the rest), "
    "or pass --skip-invalid to report and skip bad lines."
)
QUESTIONS_HINT = "Fix the line and go on from it (the questions before it were answered)."


class BadRecord(LogoError):
    """A malformed input line: the message is `FILE:LINE: reason`."""

    exit_code = ExitCode.BAD_DATA

    def __init__(self, source: str, line: int, reason: str, hint: str = INGEST_HINT) -> None:
        super().__init__(f"{source}:{line}: {reason}", hint)
        self.source = source
        self.line = line
        self.reason = reason


class NotFound(LogoError):
    exit_code = ExitCode.NOT_FOUND


class GlobalMemoryMissing(NotFound):
    def __init__(self, *, asking: bool = False) -> None:
        hint = "Build it with `logo build-global` once `logo ingest FILE.jsonl` has stored histories"
        super().__init__(
            "No global memory yet.", hint + (", or ask with --memory local / --memory none." if asking else ".")
        )


class ModelError(LogoError):
    exit_code = ExitCode.MODEL
    # Set where the message carries an LLM server's own words (its HTTP status, or 0 for an error sent inside a
    # stream): `logo serve` shows those to its admin only, as they may name the server's files.
    upstream: int | None = None

    def from_server(self, status: int = 0) -> ModelError:
        self.upstream = status
        return self


class StoreError(LogoError):
    exit_code = ExitCode.STORE


class EngineError(LogoError):
    """The build engine cannot start or failed: pyspark missing, no Java, an unreachable Spark master."""

    exit_code = ExitCode.STORE


class StoreBusy(LogoError):
    exit_code = ExitCode.BUSY


class Denied(LogoError):
    """A request the token may not make: no token or an unknown one (401), or another user's memory (403)."""

    exit_code = ExitCode.DENIED

    def __init__(self, message: str, hint: str | None = None, *, status: int = 403) -> None:
        super().__init__(message, hint)
        self.status = status
