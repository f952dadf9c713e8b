"""Which record ids belong to which user: a small SQLite table beside the on-disk Chroma store.

Chroma answers `where={"user": U}` by scanning: 97 ms per lookup at 1M records on the development machine,
against 1.7 ms to fetch the same records by id (bench/bench_scale.py). So logo keeps the mapping itself and
reads a user's records by id.

Kept a superset of the store: ids are written here before Chroma gets them and removed after Chroma drops
them, so a crash between the two leaves only extra ids, which fetching by id skips. An index that is missing,
or that belongs to another collection, is rebuilt from the store's metadata in one pass.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

FILENAME = "logo-user-index.sqlite3"


class UserIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # ingest writes from its writer thread

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS records (uid TEXT PRIMARY KEY, user TEXT NOT NULL, ts REAL)")
            db.execute("CREATE INDEX IF NOT EXISTS records_user_ts ON records (user, ts)")
            self._db = db
        return self._db

    def collection(self) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'collection'").fetchone()
        return None if row is None else str(row[0])

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM records").fetchone()[0])

    def add(self, rows: Iterable[tuple[str, str, float | None]]) -> None:
        with self._lock:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO records (uid, user, ts) VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")

    def remove(self, uids: Sequence[str]) -> None:
        with self._lock:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM records WHERE uid = ?", [(u,) for u in uids])
            self.db.execute("COMMIT")

    def ids(self, user: str, before: float | None = None) -> list[str]:
        if before is None:
            rows = self.db.execute("SELECT uid FROM records WHERE user = ?", (user,))
        else:
            rows = self.db.execute("SELECT uid FROM records WHERE user = ? AND ts < ?", (user, before))
        return [r[0] for r in rows]

    def users(self) -> list[tuple[str, int, float | None, float | None]]:
        """Every user with their record count and first and last record times."""
        rows = self.db.execute("SELECT user, count(*), min(ts), max(ts) FROM records GROUP BY user")
        return [(str(u), int(n), first, last) for u, n, first, last in rows]

    def rebuild(self, collection_id: str, rows: Iterable[tuple[str, str, float | None]]) -> None:
        """Replace the whole mapping (one transaction: a crash leaves the old one, which is rebuilt again)."""
        with self._lock:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM records")
            self.db.executemany("INSERT OR IGNORE INTO records (uid, user, ts) VALUES (?, ?, ?)", rows)
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('collection', ?)", (collection_id,))
            self.db.execute("COMMIT")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
