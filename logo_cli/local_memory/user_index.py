"""Each user's records, read without Chroma: a SQLite table beside the on-disk store.

`logo ask` reads one user's history (their records' fields and vectors) from here by an indexed lookup, so a
one-shot answer neither imports chromadb nor opens its client (about 1.2 s of CPU here, more as the store
grows), and Chroma's filtered scan (97 ms per lookup at 1M records) is never needed. Chroma stays the store
of record: ingest, forget and build-global write or scan it, and this table follows.

Every write marks the table dirty before Chroma is touched and clean after both agree, so a crash in between
leaves it dirty: readers then read Chroma (correct, slower), and the next process that opens Chroma rebuilds
the table from it, as it does when the table is missing, belongs to another collection, or was made by a
logo that kept only ids.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

FILENAME = "logo-user-index.sqlite3"
Row = tuple[str, str, float | None, bytes, bytes]  # uid, user, ts, the record's fields (JSON), its vector


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
            db.execute("PRAGMA synchronous=FULL")  # the dirty flag must survive a power cut, not only a crash
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS records (uid TEXT PRIMARY KEY, user TEXT NOT NULL, ts REAL)")
            columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
            for column in ("fields", "vector"):  # tables from a logo that kept ids only
                if column not in columns:
                    db.execute(f"ALTER TABLE records ADD COLUMN {column} BLOB")
            db.execute("CREATE INDEX IF NOT EXISTS records_user_ts ON records (user, ts)")
            self._db = db
        return self._db

    def _get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def collection(self) -> str | None:
        return self._get("collection")

    def stamp(self) -> dict[str, Any] | None:
        found = self._get("stamp")
        return None if found is None else dict(orjson.loads(found))

    def ready(self, stamp: dict[str, Any]) -> bool:
        """Whether readers may trust the table alone: complete, clean, and made for this store's stamp."""
        if not self.path.is_file():
            return False
        return self._get("dirty") == "0" and self._get("complete") == "1" and self.stamp() == stamp

    def dirty(self) -> None:
        with self._lock:
            self._set("dirty", "1")

    def clean(self) -> None:
        with self._lock:
            self._set("dirty", "0")

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM records").fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.db.execute("BEGIN")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def add(self, rows: Iterable[Row]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO records (uid, user, ts, fields, vector) VALUES (?, ?, ?, ?, ?)", rows
            )

    def remove(self, uids: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM records WHERE uid = ?", [(u,) for u in uids])

    def ids(self, user: str, before: float | None = None) -> list[str]:
        return [row[0] for row in self.rows(user, before, "uid")]

    def rows(self, user: str, before: float | None = None, columns: str = "uid, fields, vector") -> list[Any]:
        if before is None:
            return self.db.execute(f"SELECT {columns} FROM records WHERE user = ?", (user,)).fetchall()
        query = f"SELECT {columns} FROM records WHERE user = ? AND ts < ?"
        return self.db.execute(query, (user, before)).fetchall()

    def fields_of(self, uids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for start in range(0, len(uids), 500):
            chunk = list(uids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for uid, data in self.db.execute(f"SELECT uid, fields FROM records WHERE uid IN ({marks})", chunk):
                found[uid] = data
        return found

    def exists(self, uids: Sequence[str]) -> set[str]:
        """Which of these ids the table holds: ingest's duplicate check, without reading Chroma. Under the
        write lock, so a transaction in flight from the writer thread is either all seen or not at all."""
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(uids), 500):
                chunk = list(uids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                found.update(
                    row[0] for row in self.db.execute(f"SELECT uid FROM records WHERE uid IN ({marks})", chunk)
                )
        return found

    def complete_rows(self) -> bool:
        """Whether every row carries its fields and vector (an older logo kept ids only)."""
        query = "SELECT 1 FROM records WHERE fields IS NULL OR vector IS NULL LIMIT 1"
        return self.db.execute(query).fetchone() is None

    def stream(self, batch: int) -> Iterator[list[tuple[str, bytes, bytes]]]:
        """Every row (uid, fields, vector) in the order they were written (Chroma's order), `batch` at a time:
        one cursor, so memory holds one batch whatever the table's size."""
        cursor = self.db.execute("SELECT uid, fields, vector FROM records ORDER BY rowid")
        while rows := cursor.fetchmany(batch):
            yield rows

    def users(self) -> list[tuple[str, int, float | None, float | None]]:
        """Every user with their record count and first and last record times."""
        rows = self.db.execute("SELECT user, count(*), min(ts), max(ts) FROM records GROUP BY user")
        return [(str(u), int(n), first, last) for u, n, first, last in rows]

    def rebuild(self, collection_id: str, stamp: dict[str, Any], rows: Iterable[Row]) -> None:
        """Replace the whole table (one transaction: a crash leaves the old one, which is rebuilt again)."""
        with self._transaction() as db:
            db.execute("DELETE FROM records")
            db.executemany(
                "INSERT OR REPLACE INTO records (uid, user, ts, fields, vector) VALUES (?, ?, ?, ?, ?)", rows
            )
            self._set("collection", collection_id)
            self._set("stamp", orjson.dumps(stamp).decode())
            self._set("complete", "1")
            self._set("dirty", "0")

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
