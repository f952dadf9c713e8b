"""A columnar snapshot of the store: the input of every build engine.

`write_snapshot` streams the store once (from its user index on disk, from Chroma on a server) into a folder of
Parquet files, with the store's stamp in `stamp.json` beside them:

    OUT_DIR/stamp.json               {"format", "logo_schema", "embedder", "dim", "records", "files", ...}
    OUT_DIR/part-00000.parquet ...   pos, uid, user, item, label, ts, rating, text, vector

One row per record, in the store's order (`pos` numbers them), each file at most FILE_ROWS records in row
groups of ROW_GROUP, so a cluster reads them in parallel (Spark makes one task per row group). `vector` is a
fixed-size list of float32, `text` the record's own text (`embedding_text` is what the embedder read: the
item's name before it where the text does not say it). The folder is written beside its final place and
renamed at the end: a reader never sees half a snapshot.

`Snapshot` reads one: its stamp, every record in batches of a given size as numpy arrays (`batches`), and rows
by position (`take`). Only this module imports pyarrow (the Spark engine reads the files with Spark).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..errors import NotFound, StoreError, UsageError
from ..local_memory.store import Scan, Store

FORMAT = 1
STAMP = "stamp.json"
FILE_ROWS = 1_000_000  # records per file: 1.5 GB of 384-d vectors
ROW_GROUP = 50_000  # records per row group: the unit a reader (or a Spark task) takes
COLUMNS = ("pos", "uid", "user", "item", "label", "ts", "rating", "text", "vector")


def _schema(dim: int) -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("pos", pa.int64()),
            ("uid", pa.string()),
            ("user", pa.string()),
            ("item", pa.string()),
            ("label", pa.string()),
            ("ts", pa.float64()),
            ("rating", pa.float64()),
            ("text", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


@dataclass
class SnapshotSummary:
    path: str
    records: int
    users: int
    files: int
    embedder: str
    dim: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class SnapshotWriter:
    """Appends pages of records to a snapshot folder being written (`tmp`), rolling files at FILE_ROWS; `close`
    writes the stamp and moves the folder into place. Used by `write_snapshot` and by benchmarks that write
    synthetic records straight into a snapshot."""

    def __init__(self, out: Path, stamp: dict[str, Any], *, file_rows: int = FILE_ROWS, row_group: int = ROW_GROUP):
        if out.exists() and (not out.is_dir() or (not (out / STAMP).is_file() and any(out.iterdir()))):
            raise UsageError(f"{out}: exists and is not a logo snapshot.", "Name a new or empty folder.")
        self.out = out
        self.tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        try:  # the snapshot is written beside OUT_DIR: its parent must be a folder logo can write
            self.tmp.mkdir(parents=True)
        except OSError as exc:
            raise UsageError(
                f"{out}: cannot write a snapshot there ({exc.strerror}).", "Name a folder you can write to."
            ) from None
        self.stamp = dict(stamp)
        self.dim = int(stamp["dim"])
        self.schema = _schema(self.dim)
        self.file_rows, self.row_group = file_rows, row_group
        self.files: list[str] = []
        self.written = 0
        self.users: set[str] = set()
        self._writer: Any = None
        self._in_file = 0
        self._pending: list[Any] = []  # batches not yet written as a row group
        self._pending_rows = 0

    def add(
        self,
        uids: Sequence[str],
        metas: Sequence[dict[str, Any]],
        vectors: np.ndarray,
    ) -> None:
        """Append records: their ids, fields (user, text, and item, label, ts, rating where present) and vectors."""
        import pyarrow as pa

        n = len(uids)
        if not n:
            return
        if vectors.shape != (n, self.dim):
            raise StoreError(f"vectors of shape {vectors.shape}, expected ({n}, {self.dim})")
        users = [m["user"] for m in metas]
        self.users.update(users)
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        batch = pa.record_batch(
            [
                pa.array(np.arange(self.written, self.written + n, dtype=np.int64)),
                pa.array(list(uids), pa.string()),
                pa.array(users, pa.string()),
                pa.array([m.get("item") for m in metas], pa.string()),
                pa.array([m.get("label") for m in metas], pa.string()),
                pa.array([m.get("ts") for m in metas], pa.float64()),
                pa.array([m.get("rating") for m in metas], pa.float64()),
                pa.array([m.get("text") or "" for m in metas], pa.string()),
                pa.FixedSizeListArray.from_arrays(flat, self.dim),
            ],
            schema=self.schema,
        )
        self.written += n
        while batch.num_rows:
            room = min(self.file_rows - self._in_file - self._pending_rows, self.row_group - self._pending_rows)
            head, batch = batch.slice(0, room), batch.slice(room)
            self._pending.append(head)
            self._pending_rows += head.num_rows
            if self._pending_rows == self.row_group or self._in_file + self._pending_rows == self.file_rows:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self._pending_rows:
            return
        if self._writer is None:
            name = f"part-{len(self.files):05d}.parquet"
            self.files.append(name)
            self._writer = pq.ParquetWriter(
                self.tmp / name,
                self.schema,
                compression={c: ("none" if c == "vector" else "zstd") for c in COLUMNS},  # vectors do not compress
                use_dictionary=["user", "item", "label"],
            )
        self._writer.write_table(pa.Table.from_batches(self._pending), row_group_size=self._pending_rows)
        self._in_file += self._pending_rows
        self._pending, self._pending_rows = [], 0
        if self._in_file >= self.file_rows:
            self._writer.close()
            self._writer, self._in_file = None, 0

    def close(self) -> int:
        """Write what is pending and the stamp, then move the folder into place; returns the number of users."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        stamp = {
            **self.stamp,
            "format": FORMAT,
            "records": self.written,
            "users": len(self.users),
            "files": self.files,
            "written_at": time.time(),
        }
        (self.tmp / STAMP).write_bytes(orjson.dumps(stamp, option=orjson.OPT_INDENT_2))
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.replace(self.out, old)
            os.replace(self.tmp, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.out)
        return len(self.users)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_snapshot(
    store: Store,
    embedder_id: str,
    dim: int,
    out: Path,
    *,
    page_size: int = 20_000,
    progress: Callable[[int], None] | None = None,
    from_chroma: bool = False,
) -> SnapshotSummary:
    """Stream the store once into a snapshot folder at `out` (replacing a snapshot already there): from the
    user index on disk unless `from_chroma` (see `Store.stream`)."""
    started = time.perf_counter()
    store.open(embedder_id, dim, create=False)
    stamp = store.stamp()
    writer = SnapshotWriter(
        out,
        {
            "logo_schema": int(stamp.get("logo_schema", 0)),
            "embedder": stamp["embedder"],
            "dim": int(stamp["dim"]),
            "source": store.where,
        },
    )
    try:
        page: Scan
        for page in store.stream(page_size, from_chroma=from_chroma):
            writer.add(page.ids, page.metadatas, page.embeddings)
            if progress:
                progress(writer.written)
        if not writer.written:
            raise StoreError("The store is empty.", "Run `logo ingest FILE.jsonl` first.")
        users = writer.close()
    except BaseException:
        writer.abort()
        raise
    return SnapshotSummary(
        path=str(out),
        records=writer.written,
        users=users,
        files=len(writer.files),
        embedder=stamp["embedder"],
        dim=int(stamp["dim"]),
        seconds=round(time.perf_counter() - started, 2),
    )


# -------------------------------------------------------------------------------------------------- reading


@dataclass
class Batch:
    """A batch of records as arrays: `user`, `item` and `label` are indices into `user_names`, `item_names`,
    `label_names` (the batch's own, in order of first appearance; -1: none), `ts` inf when undated, `rating`
    NaN when unrated. `text` is read on demand (`texts`)."""

    pos: np.ndarray
    uids: list[str]
    user: np.ndarray
    user_names: list[str]
    item: np.ndarray
    item_names: list[str]
    label: np.ndarray
    label_names: list[str]
    ts: np.ndarray
    rating: np.ndarray
    vectors: np.ndarray
    _table: Any

    def __len__(self) -> int:
        return len(self.pos)

    def has_text(self) -> np.ndarray:
        import pyarrow.compute as pc

        lengths = pc.binary_length(self._table.column("text")).to_numpy(zero_copy_only=False)
        out: np.ndarray = np.nan_to_num(np.asarray(lengths, dtype=np.float64)) > 0
        return out

    def texts(self, rows: np.ndarray | None = None) -> list[str]:
        column = self._table.column("text")
        if rows is not None:
            column = column.take(rows)
        return [str(t) for t in column.to_pylist()]

    def embedding_texts(self, rows: np.ndarray | None = None) -> list[str]:
        """What the embedder read of each record: the item's name before a text that does not say it."""
        texts = self.texts(rows)
        items = self.item if rows is None else self.item[rows]
        out = []
        for text, item in zip(texts, items, strict=True):
            name = self.item_names[item] if item >= 0 else None
            out.append(f"{name}: {text}" if name and name.lower() not in text.lower() else text)
        return out


def _codes(column: Any) -> tuple[np.ndarray, list[str]]:
    """A string column as (indices, names in order of first appearance); -1 for nulls."""
    encoded = column.combine_chunks().dictionary_encode()
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    return indices, [str(x) for x in encoded.dictionary.to_pylist()]


class Snapshot:
    """A snapshot folder, opened: its stamp, and its records in batches or by position."""

    def __init__(self, path: Path) -> None:
        self.path = path
        stamp_file = path / STAMP
        if not stamp_file.is_file():
            raise NotFound(f"{path}: no snapshot here (no {STAMP}).", "Write one with `logo snapshot DIR`.")
        try:
            self.stamp: dict[str, Any] = orjson.loads(stamp_file.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise StoreError(f"{stamp_file}: unreadable: {exc}") from exc
        if int(self.stamp.get("format", 0)) > FORMAT:
            raise StoreError(f"{path}: a snapshot from a newer logo.", "Upgrade logo, or write the snapshot again.")
        self.files = [path / f for f in self.stamp["files"]]
        self.count = int(self.stamp["records"])
        self.dim = int(self.stamp["dim"])

    def check(self, embedder_id: str, dim: int) -> Snapshot:
        if self.stamp.get("embedder") != embedder_id or self.dim != dim:
            raise StoreError(
                f"{self.path}: the snapshot was made with embedder {self.stamp.get('embedder')} (dim {self.dim}), "
                f"not {embedder_id} (dim {dim}).",
                "Use the same --embedder as when you ingested, or write the snapshot again.",
            )
        return self

    def _row_groups(self, columns: Sequence[str]) -> Iterator[Any]:
        """Every row group of every file, one at a time (a whole-file reader keeps what it has read until the
        file ends: 1.5 GB per 1M-record file)."""
        import pyarrow.parquet as pq

        for file in self.files:
            reader = pq.ParquetFile(file)
            for group in range(reader.metadata.num_row_groups):
                yield reader.read_row_group(group, columns=list(columns))

    def _tables(self, columns: Sequence[str], size: int) -> Iterator[Any]:
        """The files' rows as tables of exactly `size` rows (the last one shorter), across row groups and files."""
        import pyarrow as pa

        pending: list[Any] = []
        held = 0
        for group in self._row_groups(columns):
            pending.append(group)
            held += group.num_rows
            while held >= size:
                table = pa.concat_tables(pending)
                yield table.slice(0, size)
                rest = table.slice(size)
                pending, held = ([rest] if rest.num_rows else []), rest.num_rows
        if held:
            yield pa.concat_tables(pending)

    def batches(self, size: int, *, vectors: bool = True) -> Iterator[Batch]:
        """Every record, `size` at a time, in the store's order."""
        columns = [c for c in COLUMNS if vectors or c != "vector"]
        for table in self._tables(columns, size):
            yield self._batch(table, vectors)

    def take(self, positions: np.ndarray, *, vectors: bool = True) -> Batch:
        """The records at these positions (sorted, distinct), in one batch: one pass over the row groups,
        reading only those that hold one of them."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        positions = np.asarray(positions, dtype=np.int64)
        columns = [c for c in COLUMNS if vectors or c != "vector"]
        parts, start = [], 0
        for file in self.files:
            reader = pq.ParquetFile(file)
            for group in range(reader.metadata.num_row_groups):
                rows = reader.metadata.row_group(group).num_rows
                lo, hi = np.searchsorted(positions, [start, start + rows])
                if hi > lo:
                    table = reader.read_row_group(group, columns=columns)
                    parts.append(table.take(pa.array(positions[lo:hi] - start)).combine_chunks())
                start += rows
        if not parts:
            return self._batch(pa.Table.from_batches([], schema=_schema(self.dim).select(columns)), vectors)
        return self._batch(pa.concat_tables(parts).combine_chunks(), vectors)

    def _batch(self, table: Any, vectors: bool) -> Batch:
        n = table.num_rows
        user, user_names = _codes(table.column("user"))
        item, item_names = _codes(table.column("item"))
        label, label_names = _codes(table.column("label"))
        ts = table.column("ts").to_numpy().astype(np.float64)
        rating = table.column("rating").to_numpy().astype(np.float64)
        if vectors:
            column = table.column("vector").combine_chunks()
            flat = column.flatten().to_numpy(zero_copy_only=False) if n else np.zeros(0, np.float32)
            matrix = np.asarray(flat, dtype=np.float32).reshape(n, self.dim)
        else:
            matrix = np.zeros((n, 0), dtype=np.float32)
        return Batch(
            pos=table.column("pos").to_numpy().astype(np.int64),
            uids=[str(u) for u in table.column("uid").to_pylist()],
            user=user,
            user_names=user_names,
            item=item,
            item_names=item_names,
            label=label,
            label_names=label_names,
            ts=np.where(np.isnan(ts), np.inf, ts),
            rating=rating,
            vectors=matrix,
            _table=table,
        )
