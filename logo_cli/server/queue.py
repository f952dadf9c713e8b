"""Whose turn it is: one piece of work at a time (llama.cpp runs one context, and a request holds the store
lock), in an order that lets no request wait for minutes behind others.

- **Admission**: at most `max_waiting` requests wait; one more is refused at once with `ServerBusy` (HTTP 503
  and `Retry-After`), rather than left to hang.
- **Two lanes**: quick work (a recommendation, a rating, a choice, a profile: no generation, or one scoring
  pass) goes before long work (an open answer that generates, an ingest), so a queue of long answers cannot
  hold a recommendation back; after `quick_streak` quick turns in a row while long work waits, the oldest
  long ticket goes, so quick work cannot starve it either. Within a lane: first come, first served (Python's
  Lock wakes waiters in any order).
- **Bounded waits**: a ticket that waits longer than `max_wait` gives up with `ServerBusy`; a ticket whose
  client went away leaves the queue at once.
- Each turn runs inside the ticket's cancel scope (`cancel.py`): the per-request time limit starts with the
  turn, and a disconnect stops the work at its next checkpoint (the next token).

A batch holds one ticket and takes one turn per question, so other requests get turns between its answers.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..cancel import Cancelled, Scope, running_in
from ..errors import ExitCode, LogoError

QUICK, LONG = "quick", "long"


class ServerBusy(LogoError):
    """Too many requests wait already, or this one waited too long: try again after `retry_after` s."""

    exit_code = ExitCode.BUSY
    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, f"Try again in {retry_after} s (Retry-After).")
        self.retry_after = retry_after


@dataclass(eq=False)
class Ticket(Scope):
    """One request's place: its lane, when it came, and its cancel scope."""

    lane: str = QUICK
    arrived: float = field(default_factory=time.monotonic)
    time_limit: float | None = None
    placed: bool = True  # holds a place until released (once)

    def __post_init__(self) -> None:
        Scope.__init__(self, self.time_limit)


class Scheduler:
    def __init__(
        self, *, max_waiting: int = 16, max_wait: float = 60.0, quick_streak: int = 8, time_limit: float = 60.0
    ) -> None:
        self.max_waiting = max_waiting
        self.max_wait = max_wait
        self.quick_streak = quick_streak
        self.time_limit = time_limit
        self._streak = 0  # quick turns given in a row while long work waited
        self._lock = threading.Condition()
        self._waiting: list[Ticket] = []
        self._admitted = 0  # tickets that hold a place (waiting, running, or between a batch's turns)
        self._running: Ticket | None = None
        self._turn_seconds = 0.5  # a running mean of how long a turn takes, for Retry-After

    # ----- places
    def admit(self, lane: str = QUICK) -> Ticket:
        """A place in the queue, or ServerBusy when `max_waiting` requests already hold one."""
        with self._lock:
            if self._admitted >= self.max_waiting + 1:  # +1: the one running
                raise ServerBusy(
                    f"The server is busy: {self._admitted} requests are running or waiting.", self._retry_after()
                )
            self._admitted += 1
            return Ticket(lane=lane, time_limit=self.time_limit)

    def release(self, ticket: Ticket) -> None:
        """The request is over (answered, failed or gone): its place is free. Releasing twice is nothing."""
        with self._lock:
            if not ticket.placed:
                return
            ticket.placed = False
            if ticket in self._waiting:
                self._waiting.remove(ticket)
            self._admitted -= 1
            self._lock.notify_all()

    @contextmanager
    def place(self, lane: str = QUICK) -> Iterator[Ticket]:
        ticket = self.admit(lane)
        try:
            yield ticket
        finally:
            self.release(ticket)

    # ----- turns
    @contextmanager
    def turn(self, ticket: Ticket, lane: str | None = None) -> Iterator[Ticket]:
        """Wait for this ticket's turn, then run the block inside its scope, alone."""
        ticket.lane = lane or ticket.lane
        ticket.arrived = time.monotonic()
        with self._lock:
            self._waiting.append(ticket)
            self._pick()
            while self._running is not ticket:
                waited = time.monotonic() - ticket.arrived
                if ticket.cancelled:
                    self._waiting.remove(ticket)
                    self._lock.notify_all()
                    raise Cancelled(f"Stopped before its turn: {ticket.reason}.")
                if waited >= self.max_wait:
                    self._waiting.remove(ticket)
                    self._lock.notify_all()
                    raise ServerBusy(
                        f"The server is busy: this request waited {waited:.0f} s for its turn.", self._retry_after()
                    )
                self._lock.wait(min(0.25, self.max_wait - waited))  # woken by a turn's end; a cancel is polled
        started = time.monotonic()
        ticket.start()
        try:
            with running_in(ticket):
                ticket.check()  # gone while it was being picked
                yield ticket
        finally:
            with self._lock:
                seconds = time.monotonic() - started
                self._turn_seconds = 0.8 * self._turn_seconds + 0.2 * seconds
                self._running = None
                self._pick()

    def _pick(self) -> None:
        """Give the next turn, if nobody runs: quick work first, unless long work has let `quick_streak` quick
        turns go before it."""
        if self._running is not None or not self._waiting:
            return
        longs = [t for t in self._waiting if t.lane == LONG]
        quicks = [t for t in self._waiting if t.lane != LONG]
        if longs and (not quicks or self._streak >= self.quick_streak):
            chosen, self._streak = longs[0], 0
        else:
            chosen = quicks[0]
            self._streak = self._streak + 1 if longs else 0
        self._waiting.remove(chosen)
        self._running = chosen
        self._lock.notify_all()

    def _retry_after(self) -> int:
        return max(1, math.ceil(self._turn_seconds * (len(self._waiting) + 1)))

    def state(self) -> dict[str, int]:
        with self._lock:
            return {"waiting": len(self._waiting), "running": int(self._running is not None)}
