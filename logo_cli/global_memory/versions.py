"""Global memory's persistence: atomic versions on disk.

A saved version is a folder with `memory.json` (clusters, profiles, communities), the centroid matrices,
`items.npz` (the population's ratings of each shared item, sorted by time), `neighbours.npz` (each item's
collaborative neighbours, `collaborative`) and `timeline.npz`, per-cluster
arrays sorted by time, from which every statistic can be recomputed as of any moment (`as_of`), so an answer
`--at` a time never uses what happened after it. A build is written to a new version folder and switched to
by replacing one pointer file at the end: a reader never sees half a build, and a crashed build leaves the
previous one in use.
"""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import orjson

from ..durable import make_folder, sync_directory, sync_file, write_atomic
from ..errors import GlobalMemoryMissing, StoreError
from . import release
from .model import Cluster, Community, GlobalMemory, ItemNeighbours, ItemTable, Timeline, UserProfile

FORMAT_VERSION = 2
POINTER = "CURRENT"
KEEP_VERSIONS = 2
UNREADABLE = (
    "`logo build-global --epsilon inf` replaces it (exact figures, research only); the private build after that "
    "continues an older readable release, or starts afresh (closed periods drawn again, a new ledger)."
)
HELD = "held"  # in an exact version: the release before it, which the next private build continues
# What a damaged file raises on load: a truncated .npz is a bad zip, a truncated .npy ends early
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, orjson.JSONDecodeError)


def new_version() -> str:
    """Sortable by time, unique across processes and across builds within one second."""
    now = time.time()
    return f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now * 1e6) % 1_000_000:06d}-{os.getpid()}"


def _to_json(memory: GlobalMemory) -> bytes:
    # asdict deep-copies arrays: the item table and its neighbours go to their own .npz files
    payload = asdict(replace(memory, items=None, neighbours=None, release=None))
    for key in ("centroids", "community_centroids", "timeline", "as_of_time", "items", "neighbours", "release"):
        payload.pop(key)
    payload.pop("data_at")  # the ledger keeps it
    payload["format"] = FORMAT_VERSION
    payload["private"] = memory.release is not None  # a private version without its ledger is damaged, not exact
    payload["item_first_ts"] = memory.timeline.item_first_ts if memory.timeline else {}
    payload["item_names"] = memory.items.names if memory.items else None
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)


def save(memory: GlobalMemory, home: Path, held: release.Release | None = None) -> Path:
    """Write a new version folder, then atomically repoint CURRENT at it; prune old versions. `held`: the release
    an exact version keeps for the next private build (in HELD, which no view reads)."""
    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob(".tmp-*"):  # left by a build that crashed
        shutil.rmtree(stale, ignore_errors=True)
    for stale in home.glob(f".{POINTER}.*.tmp"):  # CURRENT's temporary, left by a build killed while writing it
        stale.unlink(missing_ok=True)
    final = home / memory.version
    tmp = home / f".tmp-{memory.version}"
    tmp.mkdir()
    (tmp / "memory.json").write_bytes(_to_json(memory))
    np.save(tmp / "centroids.npy", memory.centroids)
    np.save(tmp / "community_centroids.npy", memory.community_centroids)
    if memory.timeline is not None:
        np.savez(tmp / "timeline.npz", **memory.timeline.arrays())  # type: ignore[arg-type]
    if memory.items is not None:
        np.savez(tmp / "items.npz", **memory.items.arrays())  # type: ignore[arg-type]
    if memory.neighbours is not None:
        np.savez(tmp / "neighbours.npz", **memory.neighbours.arrays())  # type: ignore[arg-type]
    if memory.release is not None:
        release.save(memory.release, tmp)
    if held is not None:
        (tmp / HELD).mkdir()
        release.save(held, tmp / HELD)
        for file in (tmp / HELD).iterdir():
            sync_file(file)
        sync_directory(tmp / HELD)
    for file in tmp.iterdir():
        if file.is_file():
            sync_file(file)
    sync_directory(tmp)  # the files' names, not only their bytes, before the folder takes its final name
    os.replace(tmp, final)
    sync_directory(home)  # the rename on disk before CURRENT can name the folder
    write_atomic(home / POINTER, memory.version.encode())  # the switch: atomic on POSIX, and durable
    versions = sorted(p for p in home.iterdir() if p.is_dir() and p.name.startswith("v"))
    for old in versions[:-KEEP_VERSIONS]:
        if old.name != memory.version:
            shutil.rmtree(old, ignore_errors=True)
    return final


def version_folders(home: Path) -> list[Path]:
    """The version folders, newest first (their names sort by build time)."""
    if not home.is_dir():
        return []
    return sorted((p for p in home.iterdir() if p.is_dir() and p.name.startswith("v")), reverse=True)


FORGET_PENDING = "forget-pending"  # a forget removed records from a period still open: the next build charges it


def mark_forget(home: Path) -> None:
    """Before a forget deletes records from a period still open: whichever build comes next (its own refresh, or
    a later one if it is killed) charges their second draw, even if an ingest masks the fall of a count."""
    make_folder(home)
    marker = home / FORGET_PENDING
    marker.touch()
    sync_file(marker)
    sync_directory(home)  # a marker created but lost to a power loss would let the next build skip the charge


def forget_pending(home: Path) -> bool:
    return (home / FORGET_PENDING).exists()


def clear_forget(home: Path) -> None:
    (home / FORGET_PENDING).unlink(missing_ok=True)


FORGOTTEN_AT = "forgotten-at"  # when `logo forget` last deleted records: no snapshot from before may be built


def note_forgotten(home: Path) -> None:
    """Kept even when nobody is left and every version goes: a snapshot taken before would bring them back."""
    make_folder(home)  # a stamp in a folder a power loss undoes is no stamp
    # whole or not at all: a torn stamp read as 0.0 would let a snapshot from before the forget be built
    write_atomic(home / FORGOTTEN_AT, repr(time.time()).encode())


def forgotten_at(home: Path) -> float:
    try:
        return float((home / FORGOTTEN_AT).read_text())
    except (OSError, ValueError):
        return 0.0


def remove_others(home: Path, keep: str | None) -> None:
    """Delete every version folder but `keep` (None: all of them), and what crashed builds left: after
    `logo forget`, the older versions still hold the forgotten user's profile and records (the current one
    continues their release)."""
    for folder in version_folders(home):
        if folder.name != keep:
            shutil.rmtree(folder, ignore_errors=True)
    for stale in home.glob(".tmp-*") if home.is_dir() else []:
        shutil.rmtree(stale, ignore_errors=True)
    if home.is_dir():  # the removals on disk: a power loss must not bring back a version that holds them
        sync_directory(home)


def holds_user(folder: Path, user: str) -> bool:
    """Whether a version folder's memory has a profile of `user` (an unreadable one is counted as holding it)."""
    try:
        return user in orjson.loads((folder / "memory.json").read_bytes()).get("users", {})
    except DAMAGED:
        return True


def exists(home: Path) -> bool:
    return (home / POINTER).is_file()


def on_disk(home: Path) -> bool:
    """CURRENT or any version folder: `load_exact` either loads one or says what is wrong (versions left without
    CURRENT by an interrupted build or forget), never "no global memory yet"."""
    return exists(home) or bool(version_folders(home))


def load_release(home: Path) -> release.Release | None:
    """The current version's differentially private release (None: exact, or no global memory yet)."""
    pointer = home / POINTER
    if not pointer.is_file():
        return None
    return _release_in(home / pointer.read_text().strip(), None)


def _release_in(folder: Path, private: bool | None) -> release.Release | None:
    """The release in a version folder (None: an exact version). `private`: what its memory.json says, when the
    caller read it (None: read it here if the release's files are missing). A version built private whose
    ledger or cells are gone is unreadable: read as exact, it would show every figure without noise."""
    try:
        found = release.load(folder)
    except DAMAGED as exc:
        raise StoreError(f"{folder}: the privacy release is unreadable: {exc}", UNREADABLE) from exc
    if found is None and (private or (private is None and _missing_release(folder))):
        raise StoreError(f"{folder}: the privacy release is unreadable: ledger.json is missing", UNREADABLE)
    return found


def _missing_release(folder: Path) -> bool:
    return (folder / "release.npz").exists() or bool(_says_private(folder))


def _says_private(folder: Path) -> bool | None:
    """What a version's memory.json says of its release: True (private), False (exact, and so holds the
    release before it), None (written before logo said, or unreadable: loading it says so)."""
    try:
        flag = orjson.loads((folder / "memory.json").read_bytes()).get("private")
    except DAMAGED:
        return None
    return None if flag is None else bool(flag)


def continued_release(home: Path) -> release.Release | None:
    """The release a new build continues: the current version's, or the one an exact version holds for it, or
    (an exact version written before versions held one) the newest older version's that has one. A store whose
    CURRENT is gone is read from its newest version, as strictly: a damaged one stops the build."""
    folders = version_folders(home)
    pointer = home / POINTER
    current = home / pointer.read_text().strip() if pointer.is_file() else (folders[0] if folders else None)
    if current is None:
        return None
    found = _release_in(current, None)
    if found is not None:
        return found
    if _says_private(current) is False and not (current / HELD / "ledger.json").is_file():
        # an exact version always holds the release before it (or the ledger of its own build): without it the
        # next private build would start a new ledger and draw every closed period again
        raise StoreError(f"{current / HELD}: the release this exact version holds is missing", UNREADABLE)
    older = [p for p in folders if p != current]
    for folder in [current / HELD, *older]:
        try:
            found = release.load(folder)
        except DAMAGED as exc:
            if folder in older:
                continue  # a best effort for versions from before `held`: an unreadable one is skipped
            message = f"{folder}: the privacy release a new build continues is unreadable: {exc}"
            raise StoreError(message, UNREADABLE) from exc
        if found is not None:
            return found
    return None


def load(home: Path) -> GlobalMemory:
    """The current version, as everyone sees it: its statistics from its privacy release when it has one."""
    memory, folder, private = _load_exact(home)
    released = _release_in(folder, private)  # the same folder: a build switching CURRENT meanwhile changes nothing
    return release.apply(memory, released) if released is not None else memory


def load_exact(home: Path) -> GlobalMemory:
    """The current version with the exact statistics the build computed (the operator's; never shown)."""
    return _load_exact(home)[0]


def _load_exact(home: Path) -> tuple[GlobalMemory, Path, bool | None]:
    """(the current version's exact memory, its folder, whether it was built private: None if it does not say)."""
    pointer = home / POINTER
    if not pointer.is_file():
        if version_folders(home):
            raise StoreError(
                f"{pointer} is missing, beside {len(version_folders(home))} version folder(s).",
                "An interrupted `logo build-global` or `logo forget` left it so: run that command again "
                "(`logo build-global` continues the newest version's release).",
            )
        raise GlobalMemoryMissing()
    folder = home / pointer.read_text().strip()
    try:
        data = orjson.loads((folder / "memory.json").read_bytes())
        centroids = np.load(folder / "centroids.npy")
        community_centroids = np.load(folder / "community_centroids.npy")
        arrays = dict(np.load(folder / "timeline.npz")) if (folder / "timeline.npz").is_file() else None
        item_arrays = dict(np.load(folder / "items.npz")) if (folder / "items.npz").is_file() else None
        near = dict(np.load(folder / "neighbours.npz")) if (folder / "neighbours.npz").is_file() else None
    except DAMAGED as exc:
        raise StoreError(f"{folder}: global memory is unreadable: {exc}", "Run `logo build-global` again.") from exc
    if data.get("format", 0) > FORMAT_VERSION:
        raise StoreError(f"{folder}: global memory from a newer logo.", "Upgrade logo or rebuild it.")
    if data.get("format", 0) < FORMAT_VERSION:
        raise StoreError(f"{folder}: global memory from an older logo.", "Run `logo build-global` to rebuild it.")
    timeline = None
    if arrays is not None:
        items = {int(c): v for c, v in data.get("item_first_ts", {}).items()}
        timeline = Timeline(**arrays, item_first_ts=items)
    memory = GlobalMemory(
        version=data["version"],
        built_at=data["built_at"],
        embedder=data["embedder"],
        options=data["options"],
        records=data["records"],
        clusters=[Cluster(**{**c, "top_items": [tuple(t) for t in c["top_items"]]}) for c in data["clusters"]],
        users={
            u: UserProfile(**{**p, "distribution": {int(c): s for c, s in p["distribution"].items()}})
            for u, p in data["users"].items()
        },
        communities=[
            Community(**{**c, "top_clusters": [tuple(t) for t in c["top_clusters"]]}) for c in data["communities"]
        ],
        segments=data["segments"],
        rating_range=tuple(data["rating_range"]) if data["rating_range"] else None,
        rating_step=data.get("rating_step"),
        selection=data.get("selection", {}),
        drift=data.get("drift", {}),
        centroids=centroids,
        community_centroids=community_centroids,
        timeline=timeline,
        items=ItemTable(names=data["item_names"], **item_arrays) if item_arrays and data.get("item_names") else None,
        neighbours=ItemNeighbours(**near) if near is not None else None,
    )
    return memory, folder, data.get("private")
