"""One process at a time uses a store: Chroma's on-disk client is not safe for several processes.

Every command that opens the store holds an exclusive file lock (filelock) on `$LOGO_HOME/store.lock` for as
long as it uses it; another process waits, says so on stderr after a moment, and gives up with exit code 7
when `--wait` seconds have passed (default: wait as long as it takes). So every command writes in LOGO_HOME,
even one that only reads: a home that is a file, or that logo cannot write, is a StoreError before anything.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreBusy, StoreError

NOTICE_AFTER = 2.0  # seconds of waiting before saying so
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)  # a folder without write permission, a read-only mount


def make_home(home: Path) -> None:
    """Create LOGO_HOME if it is not there; a StoreError if it is a file or cannot be created."""
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise home_error(home, exc) from None


def home_error(home: Path, exc: OSError) -> StoreError:
    """What a failed mkdir of LOGO_HOME or a failed open of a lock file in it means, and what to do."""
    if home.exists() and not home.is_dir():
        return StoreError(f"LOGO_HOME {home} is a file, not a folder.", "Point LOGO_HOME (or --home) at a folder.")
    if not home.exists():
        return StoreError(
            f"LOGO_HOME {home} cannot be created ({exc.strerror}).",
            "Point LOGO_HOME (or --home) at a folder logo can write.",
        )
    lock = Path(exc.filename) if isinstance(exc.filename, str) else None
    if exc.errno in READ_ONLY and lock is not None and lock.is_file() and lock.stat().st_uid != os.getuid():
        return StoreError(  # a server's user and a shell's sharing one home: the folder is fine, the file is not
            f"{lock} belongs to another user, and this one cannot open it ({exc.strerror}).",
            "Run logo as that user, or let both write it (a shared group, and chmod g+w on the file).",
        )
    if exc.errno in READ_ONLY:
        return StoreError(
            f"LOGO_HOME {home} is not writable ({exc.strerror}): every logo command writes its lock file there, "
            "even one that only reads.",
            "Point LOGO_HOME (or --home) at a writable copy of the folder.",
        )
    return StoreError(
        f"LOGO_HOME {home}: cannot use the folder: {exc.strerror or exc}.",
        "Point LOGO_HOME (or --home) at a folder logo can write.",
    )


@contextmanager
def store_lock(home: Path, wait: float | None = None, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    from filelock import FileLock, Timeout

    make_home(home)
    lock = FileLock(str(home / "store.lock"))
    try:
        _acquire(lock, home, min(NOTICE_AFTER, wait) if wait is not None else NOTICE_AFTER)
    except Timeout:
        if wait is not None and wait <= NOTICE_AFTER:
            raise StoreBusy(
                f"Another logo process is using {home}.", "Try again later, or pass a longer --wait."
            ) from None
        if on_wait:
            on_wait(f"waiting for another logo process that is using {home}...")
        try:
            _acquire(lock, home, -1 if wait is None else wait - NOTICE_AFTER)
        except Timeout:
            raise StoreBusy(
                f"Another logo process is still using {home} after {wait:g} s.", "Try again later, or raise --wait."
            ) from None
    try:
        yield
    finally:
        lock.release()


def _acquire(lock: Any, home: Path, timeout: float) -> None:
    """`lock.acquire`, a lock file that cannot be created or opened raised as the StoreError about LOGO_HOME."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=timeout)
    except Timeout:  # an OSError too, but only another process holding the lock
        raise
    except OSError as exc:
        raise home_error(home, exc) from None
