"""Writes that survive a crash or a power loss: fsync the file, rename it into place, then fsync its folder.

A file's fsync makes its bytes durable, not its name: a rename, or a file just created, lives in its folder's
entries, and only an fsync of the folder puts those on disk. Without it, after a power loss, a renamed file can
be back under its old name (or gone), even though its content was synced.

Only the standard library, so importing it costs nothing wherever a file is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path


def sync_file(path: Path) -> None:
    """Flush a file's content (and its size) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# What some file systems (CIFS, some FUSE and NFS mounts) answer an fsync of a folder with: they cannot, and
# a build or a forget must not fail for it (PostgreSQL's fsync_fname ignores the same for folders).
UNSYNCABLE_FOLDER = (errno.EINVAL, errno.EBADF, errno.ENOTSUP)


def sync_directory(path: Path) -> None:
    """Flush a folder's entries to disk: what was renamed into it, created or removed in it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in UNSYNCABLE_FOLDER:
            raise
    finally:
        os.close(fd)


def make_folder(path: Path) -> None:
    """mkdir -p, and a new folder's name synced into its parent: a file written into it next is durable only
    if the folder is."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    sync_directory(path.parent)


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data`: a reader sees the old file or the new one, whole, and so does the disk after a
    crash. `mode`: the new file's permissions, whatever the umask (None: the umask's default, as open() makes).
    A failure leaves the old file as it was and no temporary file."""
    # in the same folder, so the rename never crosses file systems; the pid keeps two processes apart
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # os.open's mode is masked by the umask
            view = memoryview(data)
            while view:  # os.write may write less than it is given
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)
    _remove_orphans(path)


ORPHAN_AGE = 600.0  # seconds: a temporary younger than this may be a live writer's on another host or container


def _remove_orphans(path: Path) -> None:
    """Remove the temporaries of `path` that processes killed mid-write left; a live writer's stays. A pid is
    only this machine's: on a shared folder (NFS, a container's bind mount) another host's live writer looks
    dead from here, so a temporary must also be older than ORPHAN_AGE (a write takes well under a second)."""
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        pid = orphan.name[len(path.name) + 2 : -len(".tmp")]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            if time.time() - orphan.stat().st_mtime > ORPHAN_AGE:
                orphan.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or no such pid can exist): leave its file alone
    return True
