"""One process at a time uses a store: Chroma's on-disk client is not safe for several processes.

Every command that opens the store holds an exclusive file lock (filelock) on `$LOGO_HOME/store.lock` for as
long as it uses it; another process waits, says so on stderr after a moment, and gives up with exit code 7
when `--wait` seconds have passed (default: wait as long as it takes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import StoreBusy

NOTICE_AFTER = 2.0  # seconds of waiting before saying so


@contextmanager
def store_lock(home: Path, wait: float | None = None, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    home.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(home / "store.lock"))
    try:
        lock.acquire(timeout=min(NOTICE_AFTER, wait) if wait is not None else NOTICE_AFTER)
    except Timeout:
        if wait is not None and wait <= NOTICE_AFTER:
            raise StoreBusy(
                f"Another logo process is using {home}.", "Try again later, or pass a longer --wait."
            ) from None
        if on_wait:
            on_wait(f"waiting for another logo process that is using {home}...")
        try:
            lock.acquire(timeout=-1 if wait is None else wait - NOTICE_AFTER)
        except Timeout:
            raise StoreBusy(
                f"Another logo process is still using {home} after {wait:g} s.", "Try again later, or raise --wait."
            ) from None
    try:
        yield
    finally:
        lock.release()
