"""Local memory on disk: the only module that imports chromadb.

One collection holds every user's records (cosine space), filtered by `user` at query time. The collection
is stamped with the embedder id, its dimension and the schema version, so a store is never silently mixed
with vectors from another model or read by an older logo.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..config import Settings
from ..errors import NotFound, StoreError
from ..records import Record
from .user_index import FILENAME as USER_INDEX_FILE
from .user_index import UserIndex

SCHEMA_VERSION = 2  # 2: text and the unfiltered fields packed in one metadata field (see _metadata)
COLLECTION = "records"
CONFIGURATION: dict[str, Any] = {"hnsw": {"space": "cosine"}}
GENERATION_FILE = "logo-generation"


@dataclass(frozen=True)
class Hit:
    record: Record
    score: float  # cosine similarity to the query


@dataclass(frozen=True)
class Page:
    records: list[Record]
    embeddings: np.ndarray


@dataclass(frozen=True)
class Scan:
    """A page of a full pass: ids, each record's fields (user, ts, item, rating, label; flattened by `fields`)
    and vectors. Schema-1 stores leave the text out of it; schema 2 carries it in the packed field."""

    ids: list[str]
    metadatas: list[dict[str, Any]]
    embeddings: np.ndarray


PACKED = "r"  # schema 2: everything but the filtered fields (user, ts), as one JSON string


def _metadata(record: Record, *, packed: bool = True) -> dict[str, Any]:
    """Chroma metadata for a record. Only `user` and `ts` are ever filtered on, so schema 2 packs the rest
    (text included) into one JSON field: each metadata key is a row and index entries in Chroma's SQLite,
    and packing cut the write's CPU time by 28% (bench notes in README). Schema 1 kept one key per field
    and the text as a Chroma document."""
    meta: dict[str, Any] = {"user": record.user}
    if record.timestamp is not None:
        meta["ts"] = record.timestamp
    rest: dict[str, Any] = {"text": record.text} if packed else {}
    for key in ("item", "rating", "label"):
        value = getattr(record, key)
        if value is not None:
            rest[key] = value
    if record.source_id is not None:
        rest["rid"] = record.source_id
    if record.meta:
        rest["meta"] = record.meta if packed else orjson.dumps(record.meta).decode()
    if packed:
        meta[PACKED] = orjson.dumps(rest).decode()
        return meta
    return meta | rest


def fields(meta: dict[str, Any]) -> dict[str, Any]:
    """A record's stored fields as one flat dict, whichever schema wrote them."""
    if PACKED in meta:
        out = {k: v for k, v in meta.items() if k != PACKED}
        out.update(orjson.loads(meta[PACKED]))
        return out
    return meta


def _record(uid: str, document: str | None, meta: dict[str, Any]) -> Record:
    f = fields(meta)
    extra = f.get("meta")
    return Record(
        user=f["user"],
        text=f.get("text", document or ""),
        uid=uid,
        source_id=f.get("rid"),
        timestamp=f.get("ts"),
        item=f.get("item"),
        rating=f.get("rating"),
        label=f.get("label"),
        meta=(orjson.loads(extra) if isinstance(extra, str) else dict(extra)) if extra else {},
    )


def _records(got: dict[str, Any]) -> list[Record]:
    """The records of a Chroma `get` result that included documents and metadatas."""
    return [_record(u, d, m) for u, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]


def user_filter(user: str | None = None, before: float | None = None) -> dict[str, Any] | None:
    """A Chroma `where` clause: one user's records, and only those strictly before `before` (epoch s)."""
    clauses: list[dict[str, Any]] = []
    if user is not None:
        clauses.append({"user": user})
    if before is not None:
        clauses.append({"ts": {"$lt": before}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class Store:
    """A Chroma PersistentClient under `path`, or a Chroma server at `url` (HttpClient) when one is given.

    `exists()` tells whether anything was ever ingested. Messages name `where`: the folder or the URL.
    """

    def __init__(self, path: Path, url: str = "") -> None:
        self.path = path
        self.url = url.rstrip("/")
        self.where = self.url or str(path)
        self._collection: Any = None
        self._chroma: Any = None
        self._index: UserIndex | None = None  # on-disk stores only: a server is shared, this file is not
        self._stamp: dict[str, Any] | None = None  # set by open(): the store's schema, embedder and dim
        self._packed = True
        self.repaired = False  # whether opening had to rebuild Chroma's vector index (repair.py)

    def exists(self) -> bool:
        if not self.url:
            return (self.path / "chroma.sqlite3").is_file()
        try:
            return COLLECTION in _collection_names(self._client())
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.url}: cannot list collections: {exc}") from exc

    def _client(self) -> Any:
        if self._chroma is not None:
            return self._chroma
        from ..config import force_offline

        force_offline()
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False, allow_reset=False)
        try:
            if self.url:
                self._chroma = _http_client(self.url, settings)
            else:
                self._chroma = chromadb.PersistentClient(path=str(self.path), settings=settings)
        except StoreError:
            raise
        except Exception as exc:
            hint = (
                "Is the server running? Start one with `chroma run --path DIR`."
                if self.url
                else ("Check LOGO_HOME and permissions.")
            )
            raise StoreError(f"{self.where}: cannot open the store: {exc}", hint) from exc
        return self._chroma

    def open(self, embedder_id: str, dim: int, *, create: bool) -> Store:
        """Open (or create) the collection and check its stamp against the embedder in use. An on-disk store
        whose user index is ready opens without Chroma: readers (`ask`) never need it, and whatever does need
        it opens it on first use (`collection`)."""
        if self._collection is not None or self._stamp is not None:
            return self
        if not create and not self.exists():
            raise NotFound(f"{self.where}: no store yet.", "Run `logo ingest FILE.jsonl` first.")
        expected = {"logo_schema": SCHEMA_VERSION, "embedder": embedder_id, "dim": dim}
        if not self.url and not create:
            index = UserIndex(self.path / USER_INDEX_FILE)
            stamp = index.stamp() if index.path.is_file() else None
            if stamp is not None and index.ready(stamp):
                _check_stamp(self.where, stamp, embedder_id, dim)
                self._index, self._stamp = index, stamp
                self._packed = int(stamp.get("logo_schema", 0)) >= 2
                return self
        self._open_collection(expected)
        return self

    def _open_collection(self, expected: dict[str, Any]) -> None:
        from . import repair

        cut_short = not self.url and repair.pending(self.path)  # a repair to finish before any use
        if cut_short and not self.exists():  # the store was removed on purpose: never bring its records back
            raise StoreError(
                f"{self.where}: {repair.FILENAME} holds every record of a store whose repair was cut short, "
                "but that store is gone.",
                f"If you removed the store on purpose, delete {self.path / repair.FILENAME}; to get the "
                "records back, restore chroma.sqlite3 beside it.",
            )
        client = self._client()
        if cut_short:
            self._rebuild(client)
        try:
            collection = client.get_or_create_collection(
                COLLECTION, metadata=expected, configuration=CONFIGURATION, embedding_function=None
            )
            if not self.url:
                collection.count()  # the first read replays Chroma's log into its vector index: fails if damaged
        except Exception as exc:
            if self.url or not repair.damaged(exc):
                raise StoreError(f"{self.where}: cannot open the records collection: {exc}") from exc
            collection = self._repair(client, exc)
        found = dict(collection.metadata or {})
        _check_stamp(self.where, found, str(expected["embedder"]), int(expected["dim"]))
        self._collection = collection
        self._stamp = found
        self._packed = int(found.get("logo_schema", 0)) >= 2
        if not self.url:
            self._index = self._synced_index(collection, found)

    def _repair(self, client: Any, cause: Exception) -> Any:
        """Rebuild the collection whose vector index a crash left unusable (see repair.py), and return it.
        The caller holds the store lock, as every command that opens the store does."""
        from . import repair

        try:
            metadata = dict(client.get_collection(COLLECTION, embedding_function=None).metadata or {})
            repair.capture(self.path, COLLECTION, metadata, self.path / USER_INDEX_FILE)
        except Exception as exc:
            raise StoreError(
                f"{self.where}: Chroma's vector index is damaged ({cause}), and logo cannot rebuild it: {exc}",
                "Nothing was changed. Keep a copy of the folder, then move it aside and run `logo ingest` again.",
            ) from exc
        return self._rebuild(client)

    def _rebuild(self, client: Any) -> Any:
        """Drop the collection and add every record of the repair file to a new one with the same stamp; then
        remove the file. Run again from the start if cut short: the file stays until the count is checked."""
        from . import repair

        captured: repair.Captured | None = None
        try:
            captured = repair.Captured(self.path)
            self._wrote()  # a reader that stays open (logo serve) must not keep the collection this drops
            if COLLECTION in _collection_names(client):
                client.delete_collection(COLLECTION)
            collection = client.create_collection(
                COLLECTION, metadata=captured.metadata, configuration=CONFIGURATION, embedding_function=None
            )
            for batch in captured.batches(5000):
                _add_rows(collection, batch)
            if collection.count() != captured.count:
                raise StoreError(f"{collection.count()} records after the rebuild, not {captured.count}.")
            captured.close()
            captured = None
            repair.finish(self.path)
        except Exception as exc:
            raise StoreError(
                f"{self.where}: rebuilding the vector index failed: {exc}",
                f"Run the command again: the rebuild starts over from {repair.FILENAME} in the store folder. "
                "If it fails again, check free disk space (a rebuild needs about the store's size again) and "
                "memory.",
            ) from exc
        finally:
            if captured is not None:
                captured.close()
        self.repaired = True
        self._wrote()  # a reader that stays open (logo serve) must open the new collection
        return collection

    def _synced_index(self, collection: Any, stamp: dict[str, Any]) -> UserIndex:
        """The user index, rebuilt from the store when missing, from another collection, left dirty by a crash,
        kept by an older logo (ids only), or off by a record count."""
        index = self._index or UserIndex(self.path / USER_INDEX_FILE)
        if index.collection() != str(collection.id) or not index.ready(stamp) or index.count() != collection.count():
            index.rebuild(str(collection.id), stamp, self._index_rows(collection))
        return index

    def _index_rows(self, collection: Any) -> Iterator[tuple[str, str, float | None, bytes, bytes]]:
        offset = 0
        while True:
            got = collection.get(limit=20_000, offset=offset, include=["metadatas", "embeddings", "documents"])
            if not got["ids"]:
                return
            for uid, meta, doc, vector in zip(
                got["ids"], got["metadatas"], got["documents"], got["embeddings"], strict=True
            ):
                yield _index_row(_record(uid, doc, meta), np.asarray(vector, dtype=np.float32))
            offset += len(got["ids"])

    def _index_rows_of(self, user: str, before: float | None) -> list[Any] | None:
        """The user's rows from the index, or None to read Chroma instead: no index (a server store), or rows
        an older logo wrote with ids only (it does not know to keep fields and vectors)."""
        if self._index is None:
            return None
        rows = self._index.rows(user, before)
        return None if any(r[1] is None or r[2] is None for r in rows) else rows

    def _where_user(self, user: str, before: float | None, include: list[str]) -> dict[str, Any]:
        """One user's records (as of `before`) by Chroma's filter: a server store, which has no user index."""
        return dict(self.collection.get(where=user_filter(user, before), include=include))

    @property
    def collection(self) -> Any:
        if self._collection is None:
            if self._stamp is None:
                raise RuntimeError("Store.open() must be called first")
            self._open_collection(self._stamp)  # opened for reading from the index; now Chroma is needed
        return self._collection

    def stamp(self) -> dict[str, Any]:
        if self._stamp is None:
            raise RuntimeError("Store.open() must be called first")
        return dict(self._stamp)

    def count(self) -> int:
        return int(self.collection.count())

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of these ids are stored: from the user index on disk (it agrees with Chroma once the store is
        open, and every write updates it before it counts), else from Chroma."""
        if not ids:
            return set()
        if self._index is not None:
            return self._index.exists(ids)
        return set(self.collection.get(ids=list(ids), include=[])["ids"])

    @property
    def generation_file(self) -> Path:
        """Touched after every write, so a long-running reader (`logo serve`) knows the store changed (reads
        touch Chroma's own files, so their times say nothing)."""
        return self.path / GENERATION_FILE

    def _wrote(self) -> None:
        if not self.url:
            with contextlib.suppress(OSError):
                self.generation_file.write_text(str(time.time_ns()))

    def add(self, records: Sequence[Record], embeddings: np.ndarray) -> None:
        if not records:
            return
        collection = self.collection
        if self._index is not None:
            self._index.dirty()  # until Chroma and the index agree again
            self._wrote()  # a reader that stays open (logo serve) looks again, and finds it dirty if we crash
        if self._packed:
            # no Chroma documents: Chroma indexes them for full-text search, which logo never uses, and
            # writing them cost 40% more than the same text as metadata (1,665 vs 2,858 records/s here)
            collection.add(
                ids=[r.uid for r in records],
                embeddings=embeddings,
                metadatas=[_metadata(r) for r in records],
            )
        else:  # a schema-1 store keeps its layout
            collection.add(
                ids=[r.uid for r in records],
                embeddings=embeddings,
                documents=[r.text for r in records],
                metadatas=[_metadata(r, packed=False) for r in records],
            )
        if self._index is not None:
            self._index.add(_index_row(r, v) for r, v in zip(records, embeddings, strict=True))
            self._index.clean()
        self._wrote()

    def users(self) -> list[tuple[str, int, float | None, float | None]]:
        """Every user with their record count and first and last record times: from the user index on disk,
        from one metadata pass on a server."""
        if self._index is not None:
            return self._index.users()
        found: dict[str, list[Any]] = {}
        for page in self.scan():
            for meta in page.metadatas:
                ts = meta.get("ts")
                entry = found.setdefault(meta["user"], [0, None, None])
                entry[0] += 1
                if ts is not None:
                    entry[1] = ts if entry[1] is None else min(entry[1], ts)
                    entry[2] = ts if entry[2] is None else max(entry[2], ts)
        return [(u, n, first, last) for u, (n, first, last) in found.items()]

    def user_ids(self, user: str) -> list[str]:
        """Every id of the user's records, as Chroma has them (forget must find them all, whatever the index
        says)."""
        return list(self.collection.get(where=user_filter(user), include=[])["ids"])

    def delete(self, ids: Sequence[str]) -> None:
        collection = self.collection
        if self._index is not None:
            self._index.dirty()
            self._wrote()
        for start in range(0, len(ids), 5000):
            chunk = list(ids[start : start + 5000])
            collection.delete(ids=chunk)
            if self._index is not None:
                self._index.remove(chunk)
        if self._index is not None:
            self._index.clean()
        self._wrote()

    def user_vectors(self, user: str, before: float | None = None) -> tuple[list[str], np.ndarray]:
        """The ids and vectors of the user's records (as of `before`), without text: one indexed lookup."""
        rows = self._index_rows_of(user, before)
        if rows is not None:
            rows = [r for r in rows if orjson.loads(r[1]).get("user") == user]
            return [r[0] for r in rows], _vectors([r[2] for r in rows])
        got = self._where_user(user, before, ["embeddings"])
        if not got["ids"]:
            return [], np.zeros((0, 0), dtype=np.float32)
        return list(got["ids"]), np.asarray(got["embeddings"], dtype=np.float32)

    def user_history(self, user: str, before: float | None = None) -> tuple[list[Record], np.ndarray]:
        """All of the user's records (as of `before`) and their vectors, in one query."""
        rows = self._index_rows_of(user, before)
        if rows is not None:
            pairs = [(_record(r[0], None, orjson.loads(r[1])), r[2]) for r in rows]
            pairs = [(record, v) for record, v in pairs if record.user == user]  # never another user's record
            return [record for record, _ in pairs], _vectors([v for _, v in pairs])
        got = self._where_user(user, before, ["embeddings", "documents", "metadatas"])
        if not got["ids"]:
            return [], np.zeros((0, 0), dtype=np.float32)
        return _records(got), np.asarray(got["embeddings"], dtype=np.float32)

    def nearest(
        self,
        user: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        query: np.ndarray,
        k: int,
        records: Sequence[Record] | None = None,
    ) -> tuple[list[Hit], np.ndarray]:
        """The k of the user's records (`ids`/`vectors`, from `user_vectors`) nearest the query, best first.

        Exact cosine over the user's own vectors: a history is small next to the store, and Chroma's
        user-filtered ANN query took 84 ms at 100k records and 1.2 s at 1M, against 6-8 ms for this whole
        retrieval (bench/bench_scale.py).
        Records are read by id only for the k kept, unless the caller already has them all.
        """
        if k <= 0 or not len(ids):
            return [], np.zeros((0, 0), dtype=np.float32)
        sims = vectors @ query
        top = np.argsort(-sims, kind="stable")[:k]
        if records is not None:
            found = {records[i].uid: records[i] for i in top}
        elif self._index is not None and None not in (data := self._index.fields_of([ids[i] for i in top])).values():
            found = {uid: _record(uid, None, orjson.loads(blob)) for uid, blob in data.items()}
        else:
            got = self.collection.get(ids=[ids[i] for i in top], include=["documents", "metadatas"])
            found = {r.uid: r for r in _records(got)}
        hits, kept = [], []
        for i in top:
            record = found.get(ids[i])
            if record is None or record.user != user:
                continue  # never leak another user's record, whatever the store returned
            hits.append(Hit(record, float(sims[i])))
            kept.append(i)
        return hits, vectors[kept]

    def ids(self, page_size: int = 100_000) -> list[str]:
        """Every record id (no vectors, no text): cheap, and what a random sample is drawn from."""
        out: list[str] = []
        while True:
            got = self.collection.get(limit=page_size, offset=len(out), include=[])["ids"]
            out.extend(got)
            if len(got) < page_size:
                return out

    def fetch(self, ids: Sequence[str], chunk: int = 5000) -> Page:
        """These records with their vectors, in the order asked (ids not in the store are left out)."""
        found: dict[str, tuple[Record, np.ndarray]] = {}
        for start in range(0, len(ids), chunk):
            got = self.collection.get(
                ids=list(ids[start : start + chunk]), include=["documents", "metadatas", "embeddings"]
            )
            for record, vector in zip(_records(got), got["embeddings"], strict=True):
                found[record.uid] = (record, vector)
        kept = [found[uid] for uid in ids if uid in found]
        vectors = np.asarray([v for _, v in kept], dtype=np.float32).reshape(len(kept), -1)
        return Page([r for r, _ in kept], vectors)

    def scan(self, page_size: int = 20_000) -> Iterator[Scan]:
        """Every record's id, metadata and vector, page by page, without the text: the cheapest full pass."""
        offset = 0
        while True:
            batch = self.collection.get(limit=page_size, offset=offset, include=["metadatas", "embeddings"])
            if not batch["ids"]:
                return
            metas = [fields(m) for m in batch["metadatas"]]
            yield Scan(list(batch["ids"]), metas, np.asarray(batch["embeddings"], np.float32))
            offset += len(batch["ids"])

    def stream(self, page_size: int = 20_000, *, from_chroma: bool = False) -> Iterator[Scan]:
        """Every record's id, fields (text included) and vector, in the store's order, page by page: what a
        snapshot is written from. An on-disk store is read from its user index (one SQLite cursor: memory
        holds one page, and Chroma is not opened); a server store, or an index an older logo wrote with ids
        only, from Chroma (or `from_chroma`: Chroma's copy of each vector, renormalized for its cosine index, can
        differ from the embedder's in the last bit)."""
        if not from_chroma and self._index is not None and self._index.complete_rows():
            for rows in self._index.stream(page_size):
                yield Scan(
                    [r[0] for r in rows], [fields(orjson.loads(r[1])) for r in rows], _vectors([r[2] for r in rows])
                )
            return
        offset = 0
        while True:
            got = self.collection.get(limit=page_size, offset=offset, include=["metadatas", "embeddings", "documents"])
            if not got["ids"]:
                return
            metas = [fields(m) for m in got["metadatas"]]
            for meta, document in zip(metas, got["documents"], strict=True):
                meta.setdefault("text", document or "")  # schema 1 kept the text as Chroma's document
            yield Scan(list(got["ids"]), metas, np.asarray(got["embeddings"], np.float32))
            offset += len(got["ids"])

    def pages(self, page_size: int = 5000) -> Iterator[Page]:
        """Every record with its embedding, page by page, so memory stays bounded as the store grows."""
        offset = 0
        while True:
            batch = self.collection.get(
                limit=page_size, offset=offset, include=["documents", "metadatas", "embeddings"]
            )
            ids = batch["ids"]
            if not ids:
                return
            yield Page(_records(batch), np.asarray(batch["embeddings"], dtype=np.float32))
            offset += len(ids)


def _index_row(record: Record, vector: np.ndarray) -> tuple[str, str, float | None, bytes, bytes]:
    """A record as the user index keeps it: its fields as schema 2 packs them, its vector as float32 bytes."""
    meta = _metadata(record)
    return record.uid, record.user, record.timestamp, orjson.dumps(meta), np.asarray(vector, np.float32).tobytes()


def _collection_names(client: Any) -> list[str]:
    return [c.name if hasattr(c, "name") else str(c) for c in client.list_collections()]


def _add_rows(collection: Any, rows: Sequence[Any]) -> None:
    """Add repair rows (repair.Row) as Chroma had them: documents and metadata only where a record had them
    (schema 1 kept the text as the document; schema 2 keeps none), in their order."""
    for (has_document, has_metadata), group in itertools.groupby(
        rows, key=lambda r: (r.document is not None, bool(r.metadata))
    ):
        part = list(group)
        collection.add(
            ids=[r.uid for r in part],
            embeddings=np.stack([r.vector for r in part]),
            metadatas=[r.metadata for r in part] if has_metadata else None,
            documents=[r.document for r in part] if has_document else None,
        )


def _vectors(blobs: Sequence[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1).copy()


def _check_stamp(where: str, found: dict[str, Any], embedder_id: str, dim: int) -> None:
    if int(found.get("logo_schema", 0)) > SCHEMA_VERSION:
        raise StoreError(
            f"{where}: this store was written by a newer logo (schema {found['logo_schema']}).",
            "Upgrade logo, or point LOGO_HOME at another folder.",
        )
    if found.get("embedder") != embedder_id or int(found.get("dim", -1)) != dim:
        raise StoreError(
            f"{where}: the store was built with embedder {found.get('embedder')} "
            f"(dim {found.get('dim')}), not {embedder_id} (dim {dim}).",
            "Use the same --embedder as when you ingested, or ingest into a new LOGO_HOME.",
        )


def _http_client(url: str, settings: Any) -> Any:
    """A Chroma HttpClient for `http[s]://host[:port]` (a path prefix is not supported by Chroma's client)."""
    from urllib.parse import urlsplit

    import chromadb

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise StoreError(f"{url}: not a Chroma server URL.", "Use http://HOST:PORT, e.g. http://127.0.0.1:8000.")
    ssl = parts.scheme == "https"
    return chromadb.HttpClient(
        host=parts.hostname, port=parts.port or (443 if ssl else 8000), ssl=ssl, settings=settings
    )


def reset_clients() -> None:
    """Forget Chroma's clients (it keeps one per folder and process), so the next Store reads its folder again:
    a long-running process (`logo serve`) calls this after another process wrote the store."""
    from chromadb.api.shared_system_client import SharedSystemClient

    for system in list(SharedSystemClient._identifier_to_system.values()):
        with contextlib.suppress(Exception):  # a system that will not stop is dropped all the same
            system.stop()
    SharedSystemClient.clear_system_cache()


def store_for(settings: Settings) -> Store:
    """The store the settings name: the Chroma server at `chroma_url`, or the folder under LOGO_HOME."""
    return Store(settings.store_dir, settings.chroma_url)


def open_store(settings: Settings) -> Store:
    """The existing store, opened and stamp-checked with the configured embedder (NotFound if none yet)."""
    from ..embed import load_embedder

    embedder = load_embedder(settings.embedder_spec())
    return store_for(settings).open(embedder.id, embedder.dim, create=False)
