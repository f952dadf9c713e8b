"""The server's turns (`server/queue.py`) with plain threads: one at a time, quick work first but no starving,
bounded waits, admission, and cancellation of waiting and running work."""

from __future__ import annotations

import threading
import time

import pytest

from logo_cli.cancel import Cancelled, checkpoint
from logo_cli.server.queue import LONG, QUICK, Scheduler, ServerBusy, Ticket


def run_in_turn(scheduler: Scheduler, ticket: Ticket, log: list[str], name: str, hold: threading.Event) -> None:
    try:
        with scheduler.turn(ticket):
            log.append(name)
            hold.wait(10)
    except (Cancelled, ServerBusy) as exc:
        log.append(f"{name}:{type(exc).__name__}")
    finally:
        scheduler.release(ticket)


def waiting(scheduler: Scheduler, n: int) -> None:
    deadline = time.monotonic() + 5
    while scheduler.state()["waiting"] != n:
        assert time.monotonic() < deadline, scheduler.state()
        time.sleep(0.005)


def test_one_at_a_time_and_quick_work_before_long() -> None:
    scheduler = Scheduler(max_waiting=8)
    log: list[str] = []
    gates = {name: threading.Event() for name in ("running", "long1", "long2", "quick1", "quick2")}
    threads = []
    for name, lane in (("running", LONG), ("long1", LONG), ("long2", LONG), ("quick1", QUICK), ("quick2", QUICK)):
        ticket = scheduler.admit(lane)
        thread = threading.Thread(target=run_in_turn, args=(scheduler, ticket, log, name, gates[name]))
        thread.start()
        threads.append(thread)
        waiting(scheduler, len(threads) - 1)  # the first runs, the others wait in the order they came
    for name in ("running", "quick1", "quick2", "long1", "long2"):  # release each as it gets its turn
        deadline = time.monotonic() + 5
        while not log or log[-1] != name:
            assert time.monotonic() < deadline, log
            time.sleep(0.005)
        assert scheduler.state()["running"] == 1
        gates[name].set()
    for thread in threads:
        thread.join(5)
    assert log == ["running", "quick1", "quick2", "long1", "long2"]


def test_quick_work_cannot_starve_long_work() -> None:
    scheduler = Scheduler(max_waiting=32, quick_streak=3)
    log: list[str] = []
    first, long_ticket = scheduler.admit(QUICK), scheduler.admit(LONG)
    gate = threading.Event()
    holder = threading.Thread(target=run_in_turn, args=(scheduler, first, log, "first", gate))
    holder.start()
    waiting(scheduler, 0)
    open_gate = threading.Event()
    open_gate.set()
    threads = [threading.Thread(target=run_in_turn, args=(scheduler, long_ticket, log, "long", open_gate))]
    threads[0].start()
    waiting(scheduler, 1)
    for i in range(6):
        ticket = scheduler.admit(QUICK)
        threads.append(threading.Thread(target=run_in_turn, args=(scheduler, ticket, log, f"q{i}", open_gate)))
        threads[-1].start()
        waiting(scheduler, i + 2)
    gate.set()
    for thread in [holder, *threads]:
        thread.join(5)
    assert log == ["first", "q0", "q1", "q2", "long", "q3", "q4", "q5"]


def test_a_full_queue_is_busy_at_once_with_a_retry_after() -> None:
    scheduler = Scheduler(max_waiting=1)
    held = [scheduler.admit(), scheduler.admit()]  # one running, one waiting
    started = time.perf_counter()
    with pytest.raises(ServerBusy) as refused:
        scheduler.admit()
    assert time.perf_counter() - started < 0.1 and refused.value.retry_after >= 1 and refused.value.status == 503
    scheduler.release(held.pop())
    scheduler.release(scheduler.admit())  # a place is free again


def test_a_wait_is_bounded_and_a_cancelled_waiter_leaves() -> None:
    scheduler = Scheduler(max_waiting=4, max_wait=0.3)
    log: list[str] = []
    gate = threading.Event()
    runner = threading.Thread(target=run_in_turn, args=(scheduler, scheduler.admit(), log, "runner", gate))
    runner.start()
    waiting(scheduler, 0)
    started = time.perf_counter()
    run_in_turn(scheduler, scheduler.admit(), log, "late", threading.Event())
    assert log[-1] == "late:ServerBusy" and 0.3 <= time.perf_counter() - started < 2
    gone = scheduler.admit()
    thread = threading.Thread(target=run_in_turn, args=(scheduler, gone, log, "gone", threading.Event()))
    thread.start()
    waiting(scheduler, 1)
    gone.cancel("the client went away")
    thread.join(2)
    assert log[-1] == "gone:Cancelled" and scheduler.state()["waiting"] == 0
    gate.set()
    runner.join(2)


def test_running_work_stops_at_its_next_checkpoint() -> None:
    scheduler = Scheduler(time_limit=0.2)
    steps = []
    ticket = scheduler.admit()
    with pytest.raises(Cancelled) as stopped, scheduler.turn(ticket):
        for step in range(1000):
            checkpoint()  # what a generator does before each token
            steps.append(step)
            time.sleep(0.01)
    assert stopped.value.timed_out and 10 <= len(steps) < 40
    scheduler.release(ticket)
    ticket = scheduler.admit()
    with pytest.raises(Cancelled) as gone, scheduler.turn(ticket):
        ticket.cancel("the client went away")
        checkpoint()
    assert not gone.value.timed_out and "went away" in gone.value.message
    checkpoint()  # outside a turn: nothing to answer to
