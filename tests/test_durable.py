"""Durable writes: a file replaced whole or not at all, with its mode whatever the umask, and its folder synced
after the rename, so the new name survives a power loss; and the places that write so (tokens, global memory's
versions and markers)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from logo_cli import durable, tokens
from logo_cli.global_memory import versions

from .helpers import make_memory


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every fsync, as the path its descriptor names, in order."""
    seen: list[Path] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_atomic_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(b"old")
    with path.open("rb") as reader:  # opened before: still reads the old file, never a truncated one
        durable.write_atomic(path, b"new " * 100_000)
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new " * 100_000
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(b"old")

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device (simulated)")

    with monkeypatch.context() as patch:
        patch.setattr(os, failing, fail)
        with pytest.raises(OSError, match="simulated"):
            durable.write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_short_writes_are_continued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:3])))
    durable.write_atomic(tmp_path / "data", b"0123456789")
    assert (tmp_path / "data").read_bytes() == b"0123456789"


def test_the_mode_holds_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    stale = tmp_path / f".secret.{os.getpid()}.tmp"
    stale.write_bytes(b"left by a killed write")
    stale.chmod(0o644)  # os.open keeps an existing file's mode: only fchmod corrects it
    old = os.umask(0)
    try:
        durable.write_atomic(path, b"x", mode=0o600)
        durable.write_atomic(tmp_path / "plain", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o666  # no mode: open()'s default
    assert leftovers(tmp_path) == []


def test_a_killed_writers_temporary_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no process has now (unless the system reuses it at once)
    orphan = tmp_path / f".tokens.json.{dead.pid}.tmp"
    live = tmp_path / f".tokens.json.{os.getppid()}.tmp"  # a writer still at work
    other = tmp_path / f".other.{dead.pid}.tmp"  # another file's: not this write's to clean
    fresh = tmp_path / f".tokens.json.{dead.pid + 1_000_000}.tmp"  # dead here, but maybe another host's writer
    for file in (orphan, live, other, fresh):
        file.write_bytes(b"partial")
    old = time.time() - durable.ORPHAN_AGE - 60
    for file in (orphan, live, other):
        os.utime(file, (old, old))
    durable.write_atomic(path, b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, live.name, other.name, fresh.name])


def test_the_folder_is_synced_after_the_rename(
    tmp_path: Path, synced: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data"
    in_place_at_folder_sync: list[bool] = []
    real = durable.sync_directory

    def sync_directory(folder: Path) -> None:
        in_place_at_folder_sync.append(path.exists())
        real(folder)

    monkeypatch.setattr(durable, "sync_directory", sync_directory)
    durable.write_atomic(path, b"x")
    assert synced == [tmp_path / f".data.{os.getpid()}.tmp", tmp_path]
    assert in_place_at_folder_sync == [True]


def test_sync_file_and_sync_directory_fsync_what_they_name(tmp_path: Path, synced: list[Path]) -> None:
    (tmp_path / "f").write_bytes(b"x")
    durable.sync_file(tmp_path / "f")
    durable.sync_directory(tmp_path)
    assert synced == [tmp_path / "f", tmp_path]


def test_tokens_are_written_durably(tmp_path: Path, synced: list[Path]) -> None:
    old = os.umask(0)
    try:
        tokens.create(tmp_path, user="maya")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / tokens.FILE).stat().st_mode) == 0o600
    assert synced[-1] == tmp_path  # after the rename


def test_a_saved_version_and_its_pointer_reach_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "global"
    memory = make_memory(version=versions.new_version(), embedder="fake")
    states: list[tuple[bool, str]] = []  # at each sync of home: the version folder in place, what CURRENT names
    real = durable.sync_directory

    def sync_directory(folder: Path) -> None:
        if folder == home:
            pointer = home / versions.POINTER
            states.append(((home / memory.version).is_dir(), pointer.read_text() if pointer.exists() else ""))
        real(folder)

    monkeypatch.setattr(durable, "sync_directory", sync_directory)
    monkeypatch.setattr(versions, "sync_directory", sync_directory)
    home.mkdir()
    (home / f".{versions.POINTER}.4242.tmp").write_text("v-killed")  # a build killed while writing CURRENT
    versions.save(memory, home)
    # the folder's rename is on disk before CURRENT names it, and CURRENT's own rename after
    assert states == [(True, ""), (True, memory.version)]
    assert versions.load_exact(home).version == memory.version
    assert not [p.name for p in home.iterdir() if p.name.startswith(".")]  # the stale temporary too


@pytest.mark.parametrize("mark", [versions.mark_forget, versions.note_forgotten])
def test_markers_reach_the_disk(tmp_path: Path, synced: list[Path], mark: Callable[[Path], None]) -> None:
    home = tmp_path / "global"
    mark(home)
    # the new folder's name in its parent, the marker, then the marker's name in the folder
    assert synced[0] == tmp_path and synced[-1] == home and len(synced) == 3
    assert versions.forget_pending(home) or versions.forgotten_at(home) > 0
    synced.clear()
    mark(home)  # the folder is there now: only the marker and its name
    assert synced[-1] == home and len(synced) == 2


def test_removed_versions_stay_removed(tmp_path: Path, synced: list[Path]) -> None:
    """After `logo forget` deletes the versions that still hold a person, the deletions reach the disk."""
    home = tmp_path / "global"
    for name in ("v1", "v2", ".tmp-v3"):
        (home / name).mkdir(parents=True)
    versions.remove_others(home, "v2")
    assert sorted(p.name for p in home.iterdir()) == ["v2"] and synced == [home]


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EBADF, errno.ENOTSUP])
def test_a_folder_the_file_system_cannot_sync_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """CIFS and some FUSE or NFS mounts refuse an fsync of a folder: a build or a forget must still work there."""
    real = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    durable.write_atomic(tmp_path / "data", b"new")
    assert (tmp_path / "data").read_bytes() == b"new"


def test_other_errors_of_a_folder_sync_are_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as raised:
        durable.sync_directory(tmp_path)
    assert raised.value.errno == errno.EIO
