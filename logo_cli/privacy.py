"""A user's rights over their data: export everything (portability) and forget everything (erasure)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from . import global_memory
from .config import Settings
from .embed import load_embedder
from .errors import NotFound
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
    from .global_memory.build import BuildOptions, build_global

    store = open_store(settings)
    ids = store.user_ids(user)
    has_global = global_memory.exists(settings.global_dir)
    previous = global_memory.versions.load_exact(settings.global_dir) if has_global else None
    # a forget killed after deleting the records but before the refresh: running it again finishes the job
    unfinished = not ids and previous is not None and user in previous.users
    if not ids and not unfinished:
        raise NotFound(f"No records for user {user!r}.", "`logo users` lists the users in the store.")
    if dry_run:
        return ForgetReport(user, len(ids), True, False, None)
    if ids:
        store.delete(ids)
    version = None
    if previous is not None and store.count():
        options = BuildOptions(**{**previous.options, "update": True})  # its options; no release needed
        embedder = load_embedder(settings.embedder_spec())
        version = build_global(store, embedder.id, embedder.dim, settings.global_dir, options).version
    elif previous is not None:  # nobody is left: no global memory can stand
        (settings.global_dir / global_memory.POINTER).unlink()
    if previous is not None:
        global_memory.versions.remove_others(settings.global_dir, version)
    return ForgetReport(user, len(ids), False, version is not None, version)
