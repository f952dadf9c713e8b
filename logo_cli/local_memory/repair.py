"""Rebuilding Chroma's vector index after a crash left it unusable (chroma-core/chroma#7678).

Chroma (1.5.x, on disk) rewrites its HNSW segment files in place each time it persists the index (every 1,000
writes): header.bin, data_level0.bin, length.bin, link_lists.bin, then index_metadata.pickle (its id map),
then its watermark in chroma.sqlite3. A kill in between leaves files from two different persists, or a
truncated pickle; from then on every count, get and query fails ("Failed to apply logs to the hnsw segment
writer", "Error deserializing pickle file"), on every open, because the replay that should catch the index up
fails the same way each time. Nothing in the SQLite file is damaged: the metadata segment (`embeddings`,
`embedding_metadata`) holds every record, and Chroma's log (`embeddings_queue`) every write since the last
good persist; the older vectors are in logo's user index, which only ever holds what Chroma acknowledged.

Repair is two steps, so a kill at any moment is safe:

1. `capture` reads every record from chroma.sqlite3 (read only) and its vector from the user index, else from
   Chroma's log, into `logo-repair.sqlite3` beside the store: written under another name, synced, then renamed,
   so the file is either absent or complete. Nothing of Chroma's is changed. If a record has no vector
   anywhere, it stops with a StoreError and the store stays as it was.
2. While that file exists, the store's collection is rebuilt from it (Store._rebuild: drop the collection,
   create it again with the same stamp, add every record in the order Chroma had them, check the count), and
   only then is the file removed. A kill during the rebuild leaves the file, and the next open starts the
   rebuild again from it.

Only sqlite3 here: the Chroma calls stay in store.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..durable import sync_directory, sync_file
from ..errors import StoreError

FILENAME = "logo-repair.sqlite3"
PARTIAL = FILENAME + ".partial"
# What Chroma says of the two states a kill mid-persist leaves (chroma-core/chroma#7678): files from two
# persists, or a torn id map. Other failures to load the index (no memory, no file handles, permissions) must
# not drop and rebuild the collection, so a message counts only if it holds every part of one of these.
DAMAGE = (
    ("failed to apply logs to the hnsw segment writer",),
    ("hnsw segment", "deserializing pickle"),
)
DOCUMENT_KEY = "chroma:document"  # how Chroma's metadata segment keeps a record's document
OPERATIONS = {0: "add", 1: "update", 2: "upsert", 3: "delete"}  # embeddings_queue.operation
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SEGMENT_FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin", "index_metadata.pickle")


def damaged(exc: BaseException) -> bool:
    """Whether Chroma failed because its vector index on disk is unusable (what `capture` can rebuild)."""
    text = str(exc).lower()
    return any(all(part in text for part in sign) for sign in DAMAGE)


def pending(store_dir: Path) -> bool:
    """Whether a repair was captured and its rebuild has not finished: the collection must be rebuilt first."""
    return (store_dir / FILENAME).is_file()


@dataclass(frozen=True)
class Row:
    uid: str
    document: str | None
    metadata: dict[str, Any] | None
    vector: np.ndarray


class Captured:
    """The repair file: the collection's stamp and every record, in Chroma's order."""

    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / FILENAME
        self._db = sqlite3.connect(self.path, isolation_level=None)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        self.collection = str(meta["collection"])
        self.metadata: dict[str, Any] = orjson.loads(meta["metadata"])
        self.count = int(meta["count"])
        self.dim = int(meta["dim"])

    def batches(self, size: int) -> Iterator[list[Row]]:
        cursor = self._db.execute("SELECT uid, document, metadata, vector FROM records ORDER BY seq")
        while chunk := cursor.fetchmany(size):
            yield [
                Row(uid, document, orjson.loads(meta) if meta is not None else None, np.frombuffer(blob, "<f4"))
                for uid, document, meta, blob in chunk
            ]

    def close(self) -> None:
        self._db.close()


def capture(store_dir: Path, collection: str, metadata: dict[str, Any], index_file: Path) -> int:
    """Copy every record of `collection` (ids, documents, metadata, vectors) out of the damaged store into the
    repair file. Returns the number of records. Raises StoreError, leaving nothing behind, when a record's
    vector is nowhere but in the damaged index or the store is not in a state this knows how to read."""
    partial = store_dir / PARTIAL
    partial.unlink(missing_ok=True)  # what a kill during an earlier capture left
    chroma = sqlite3.connect(store_dir / "chroma.sqlite3")
    chroma.execute("PRAGMA query_only = 1")
    index = sqlite3.connect(index_file) if index_file.is_file() else None
    out = sqlite3.connect(partial, isolation_level=None)
    try:
        out.execute("PRAGMA synchronous = FULL")
        out.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        out.execute(
            "CREATE TABLE records (seq INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, document TEXT, "
            "metadata BLOB, vector BLOB NOT NULL)"
        )
        out.execute("BEGIN")
        count, dim = _copy(chroma, index, collection, out)
        meta = {"collection": collection, "metadata": orjson.dumps(metadata).decode(), "count": count, "dim": dim}
        out.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        out.execute("COMMIT")
    except BaseException:
        out.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        chroma.close()
        if index is not None:
            index.close()
    out.close()
    sync_file(partial)
    os.replace(partial, store_dir / FILENAME)  # the file appears whole or not at all
    sync_directory(store_dir)  # and stays so after a power loss
    return count


def finish(store_dir: Path) -> None:
    """After a rebuild is checked: remove the segment folders no collection uses any more (Chroma leaves the
    damaged one behind when the collection is dropped), then the repair file itself."""
    chroma = sqlite3.connect(store_dir / "chroma.sqlite3")
    try:
        live = {row[0] for row in chroma.execute("SELECT id FROM segments")}
    finally:
        chroma.close()
    for folder in store_dir.iterdir():
        files = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        if _UUID.match(folder.name) and folder.name not in live and files <= set(_SEGMENT_FILES):
            shutil.rmtree(folder, ignore_errors=True)
    (store_dir / FILENAME).unlink(missing_ok=True)
    sync_directory(store_dir)


def _copy(
    chroma: sqlite3.Connection, index: sqlite3.Connection | None, name: str, out: sqlite3.Connection
) -> tuple[int, int]:
    found = chroma.execute(
        "SELECT c.id, c.dimension FROM collections c JOIN databases d ON d.id = c.database_id "
        "WHERE c.name = ? AND d.name = 'default_database' AND d.tenant_id = 'default_tenant'",
        (name,),
    ).fetchone()
    if found is None:
        raise StoreError(f"Chroma's SQLite file has no collection {name!r}.")
    collection_id, dim = str(found[0]), found[1]
    segment = chroma.execute(
        "SELECT id FROM segments WHERE collection = ? AND scope = 'METADATA'", (collection_id,)
    ).fetchone()
    if segment is None:
        raise StoreError(f"Chroma's SQLite file has no metadata segment for collection {name!r}.")
    segment_id = str(segment[0])
    watermark = chroma.execute("SELECT seq_id FROM max_seq_id WHERE segment_id = ?", (segment_id,)).fetchone()
    watermark = int(watermark[0]) if watermark else 0
    logged = _logged_vectors(chroma, collection_id, watermark)
    if chroma.execute(
        "SELECT 1 FROM embedding_metadata_array a JOIN embeddings e ON e.id = a.id WHERE e.segment_id = ? LIMIT 1",
        (segment_id,),
    ).fetchone():
        raise StoreError("the store holds array metadata, which logo never writes: not a store logo can rebuild.")

    cursor = chroma.execute(
        "SELECT e.id, e.embedding_id, m.key, m.string_value, m.int_value, m.float_value, m.bool_value "
        "FROM embeddings e LEFT JOIN embedding_metadata m ON m.id = e.id WHERE e.segment_id = ? ORDER BY e.id",
        (segment_id,),
    )
    count, missing = 0, 0
    records = ((uid, list(group)) for (_, uid), group in itertools.groupby(cursor, key=lambda r: (r[0], r[1])))
    while chunk := list(itertools.islice(records, 5000)):
        from_index = _index_vectors(index, [uid for uid, _ in chunk if uid not in logged])
        rows = []
        for uid, entries in chunk:
            document, meta = _fields(entries)
            vector = from_index.get(uid, logged.get(uid))
            if vector is None:
                missing += 1
                continue
            if dim is not None and len(vector) != 4 * int(dim):
                raise StoreError(f"record {uid}: its vector has {len(vector) // 4} numbers, the store {dim}.")
            rows.append((uid, document, orjson.dumps(meta) if meta else None, vector))
        out.executemany("INSERT INTO records (uid, document, metadata, vector) VALUES (?, ?, ?, ?)", rows)
        count += len(rows)
    if missing:
        raise StoreError(
            f"{missing} of {count + missing} records have their vector only in the damaged index "
            "(logo's user index and Chroma's log lack them)."
        )
    return count, int(dim) if dim is not None else 0


def _logged_vectors(chroma: sqlite3.Connection, collection_id: str, watermark: int) -> dict[str, bytes]:
    """Each record's vector as Chroma's log (the writes not yet in a good persist of the index) last set it."""
    vectors: dict[str, bytes] = {}
    query = "SELECT seq_id, operation, topic, id, vector, encoding FROM embeddings_queue ORDER BY seq_id"
    cursor = chroma.execute(query)
    for seq_id, operation, topic, uid, vector, encoding in cursor:
        if not str(topic).endswith("/" + collection_id):
            continue
        if int(seq_id) > watermark:  # the metadata segment is behind its own log: not the damage this repairs
            raise StoreError("Chroma's metadata segment is behind its log: not the damage logo knows how to repair.")
        op = OPERATIONS.get(int(operation))
        if op == "delete":
            vectors.pop(uid, None)
        elif op in ("add", "upsert", "update") and vector is not None:
            if encoding not in (None, "FLOAT32"):
                raise StoreError(f"Chroma's log holds a vector encoded as {encoding}, not FLOAT32.")
            vectors[uid] = bytes(vector)
        elif op is None:
            raise StoreError(f"Chroma's log holds an operation logo does not know ({operation}).")
    return vectors


def _index_vectors(index: sqlite3.Connection | None, uids: list[str]) -> dict[str, bytes]:
    """The vectors logo's user index holds for these ids (what logo wrote and Chroma acknowledged)."""
    found: dict[str, bytes] = {}
    if index is None or not uids:
        return found
    with contextlib.suppress(sqlite3.OperationalError):  # no table, or one from a logo that kept ids only
        for start in range(0, len(uids), 500):
            chunk = uids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT uid, vector FROM records WHERE uid IN ({marks}) AND vector IS NOT NULL"
            found.update((uid, bytes(vector)) for uid, vector in index.execute(query, chunk))
    return found


def _fields(entries: list[Any]) -> tuple[str | None, dict[str, Any]]:
    """A record's document and metadata from its rows of `embedding_metadata` (one typed value per key)."""
    document: str | None = None
    meta: dict[str, Any] = {}
    for _, _, key, string, integer, real, boolean in entries:
        if key is None:
            continue  # a record without metadata (LEFT JOIN)
        if string is not None:
            value: Any = string
        elif integer is not None:
            value = int(integer)
        elif real is not None:
            value = float(real)
        elif boolean is not None:
            value = bool(boolean)
        else:
            continue
        if key == DOCUMENT_KEY:
            document = str(value)
        else:
            meta[key] = value
    return document, meta
