"""A user's rights over their data: export everything (portability) and forget everything (erasure)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import global_memory
from .config import Settings
from .embed import load_embedder
from .errors import NotFound, StoreError
from .local_memory.store import open_store
from .records import Record


def export_user(settings: Settings, user: str) -> Iterator[Record]:
    """All of the user's records, oldest first (undated last)."""
    records, _ = open_store(settings).user_history(user)
    if not records:
        raise NotFound(f"No records for user {user!r}.", "`logo users` lists the users in the store.")
    yield from sorted(records, key=lambda r: (r.timestamp is None, r.timestamp or 0.0, r.uid))


@dataclass
class ForgetReport:
    user: str
    records: int
    dry_run: bool
    global_refreshed: bool  # global memory recomputed without the user (build-global --update)
    global_version: str | None


def forget_user(settings: Settings, user: str, *, dry_run: bool = False) -> ForgetReport:
    """Delete every record of the user, then refresh global memory so no statistic counts them.

    The refresh is `build-global --update`: clusters keep their centroids (numbers, no text of anyone), and
    every size, item, rating, profile and community is recomputed from the remaining records.
    """
    from .global_memory.build import BuildOptions, build_global, remove_stale_snapshots

    store = open_store(settings)
    ids = store.user_ids(user)
    home = settings.global_dir
    versions = global_memory.versions
    previous, damaged = None, None
    try:  # (without CURRENT but with versions, load_exact says so: those versions are not thrown away here)
        previous = versions.load_exact(home) if versions.on_disk(home) else None
    except StoreError as exc:  # the records still go; then the error says what to do about global memory
        damaged = exc
    # A forget killed after deleting the records, before or during the refresh, finishes when run again: the
    # user is still in the current version (refresh) or in an older one (delete it)
    refresh = previous is not None and (bool(ids) or user in previous.users)
    lingering = any(versions.holds_user(folder, user) for folder in versions.version_folders(home))
    if not ids and not refresh and not lingering:
        raise NotFound(f"No records for user {user!r}.", "`logo users` lists the users in the store.")
    if dry_run:
        return ForgetReport(user, len(ids), True, False, None)
    if ids:  # both marks before the delete: a forget killed after it has lost the records
        # Records in a period the release still draws leave it with a minus sign in its next draw: the next
        # private build charges it, whichever it is.
        if versions.on_disk(home) and _in_open_periods(store, user, home):
            versions.mark_forget(home)
        versions.note_forgotten(home)  # a snapshot written before now holds them
        store.delete(ids)
    if damaged is not None:
        if not global_memory.exists(home) and store.count():  # versions without CURRENT: keep their release
            done = f"Deleted {len(ids)} record(s) of {user!r}" if ids else f"No record of {user!r} is left"
            raise StoreError(
                f"{done}, but global memory has versions and no CURRENT.",
                f"Run `logo build-global` (it continues the newest version's release), then `logo forget --user "
                f"{user}` again: it deletes the older versions that still hold their profile.",
            )
        if global_memory.exists(home):
            raise damaged
        previous = None  # a forget of the last person, killed after CURRENT went: nobody is left, finish it
    version = None
    if previous is not None and refresh and store.count():
        options = BuildOptions(**{**previous.options, "update": True})  # its options; no release needed
        embedder = load_embedder(settings.embedder_spec())
        version = build_global(store, embedder.id, embedder.dim, home, options).version
    elif previous is not None and refresh:  # nobody is left: no global memory can stand
        (home / global_memory.POINTER).unlink()
    kept = version if refresh else (previous.version if previous is not None else None)
    versions.remove_others(home, kept)
    if kept is None:
        versions.clear_forget(home)  # no release is left to charge
    remove_stale_snapshots(home)  # a killed build's snapshot holds every record, the user's too
    return ForgetReport(user, len(ids), False, version is not None, version)


def _in_open_periods(store: Any, user: str, home: Any) -> bool:
    """Whether any of the user's records is in a period global memory's release has not closed, or has a label
    (label counts have no periods: they never close)."""
    try:
        released = global_memory.versions.continued_release(home)
    except StoreError:
        return True
    if released is None:
        return False
    from .global_memory.release import in_open_periods

    records, _ = store.user_history(user)
    return any(r.label for r in records) or in_open_periods(released, [r.timestamp for r in records])
