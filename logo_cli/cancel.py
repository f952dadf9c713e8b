"""Stopping work that nobody waits for any more, or that ran past its time.

`logo serve` runs each request inside a `Scope` (a client that disconnected, or a per-request time limit,
cancels it), and the loops that can run long call `checkpoint()` between steps: a generator before each
token, an ingest between batches. Outside a scope (a one-shot command) `checkpoint()` does nothing.

The scope lives in a context variable, so it follows the thread (or task) that runs the request and reaches
the generator's loop without being passed through the layers in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import ExitCode, LogoError


class Cancelled(LogoError):
    """The work was stopped: its client went away, or it ran past its time limit."""

    exit_code = ExitCode.BUSY

    def __init__(self, message: str, hint: str | None = None, *, timed_out: bool = False) -> None:
        super().__init__(message, hint)
        self.timed_out = timed_out


class Scope:
    """Whether the work in this scope should stop: cancelled by someone, or past its deadline."""

    def __init__(self, time_limit: float | None = None) -> None:
        self.time_limit = time_limit
        self.deadline: float | None = None
        self._cancelled = threading.Event()
        self.reason = ""
        self._hooks: list[Callable[[], None]] = []
        self._hooks_lock = threading.Lock()

    def start(self) -> None:
        """The clock starts when the work does (not while it waits for its turn)."""
        if self.time_limit is not None:
            self.deadline = time.monotonic() + self.time_limit

    def cancel(self, reason: str) -> None:
        if not self._cancelled.is_set():
            self.reason = reason
            self._cancelled.set()
            with self._hooks_lock:
                hooks = list(self._hooks)
            for hook in hooks:
                hook()

    def on_stop(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Call `hook` when the work should stop: at a cancel, or at the deadline (a timer), or now if it
        should already. Returns what undoes it. For work that cannot poll (a computation in C)."""
        with self._hooks_lock:
            self._hooks.append(hook)
        timer = None
        if self.should_stop():
            hook()
        elif self.deadline is not None:
            timer = threading.Timer(max(self.deadline - time.monotonic(), 0.0), hook)
            timer.daemon = True
            timer.start()

        def undo() -> None:
            if timer is not None:
                timer.cancel()
            with self._hooks_lock:
                if hook in self._hooks:
                    self._hooks.remove(hook)

        return undo

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early when cancelled; True if cancelled."""
        return self._cancelled.wait(timeout)

    def should_stop(self) -> bool:
        """`check` without raising: cheap enough to be asked between the steps of a computation."""
        return self._cancelled.is_set() or (self.deadline is not None and time.monotonic() > self.deadline)

    def check(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled(f"Stopped: {self.reason}.")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Cancelled(
                f"The answer took longer than this server's time limit ({self.time_limit:g} s per request).",
                "Ask for fewer tokens (max_tokens), or try again when the server is less busy.",
                timed_out=True,
            )


_current: ContextVar[Scope | None] = ContextVar("logo_cancel_scope", default=None)


def current() -> Scope | None:
    """The scope the work this thread runs answers to, if any."""
    return _current.get()


def checkpoint() -> None:
    """Raise Cancelled if the work this thread runs should stop; nothing outside a scope."""
    scope = _current.get()
    if scope is not None:
        scope.check()


@contextmanager
def running_in(scope: Scope) -> Iterator[Scope]:
    """Run the block inside `scope`: the checkpoints it reaches answer to it."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
