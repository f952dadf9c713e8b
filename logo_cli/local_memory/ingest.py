"""Stream records -> batches -> embeddings -> store. Idempotent: a record already stored is counted, not added.

Each batch is written in one call after its embeddings are computed, so an interruption loses at most the
batch in flight, and a re-run adds exactly what is missing. The write of one batch runs in a background
thread while the next batch is embedded (at most one write in flight), so the embedder, not the store, sets
the pace; batches are large because the embedder sorts each call's texts by length to pad less.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..embed import Embedder
from ..errors import LogoError
from ..records import InvalidLine, Record, Source, read_records
from .store import Store

DEFAULT_BATCH = 2048


@dataclass
class IngestSummary:
    read: int = 0
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    users: int = 0
    embedder: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class IngestStopped(LogoError):
    """An error stopped the run after the records before it were stored; `summary` counts them."""

    def __init__(self, cause: LogoError, summary: IngestSummary) -> None:
        super().__init__(cause.message, cause.hint)
        self.exit_code = cause.exit_code
        self.cause = cause
        self.summary = summary


def ingest(
    paths: Sequence[Source],
    store: Store,
    embedder: Embedder,
    *,
    skip_invalid: bool = False,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[IngestSummary], None] | None = None,
    on_invalid: Callable[[InvalidLine], None] | None = None,
) -> IngestSummary:
    """Ingest every record of `paths`. With `skip_invalid`, each bad line goes to `on_invalid` as it is met."""
    from concurrent.futures import Future, ThreadPoolExecutor

    summary = IngestSummary(embedder=embedder.id)
    store.open(embedder.id, embedder.dim, create=True)
    users: set[str] = set()
    batch: dict[str, Record] = {}
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logo-store-write")
    in_flight: tuple[Future[None], set[str]] | None = None  # the write running now and the ids it holds

    def settle() -> None:
        """Wait for the write in flight; only then do its records count as added."""
        nonlocal in_flight
        if in_flight is None:
            return
        future, ids = in_flight
        in_flight = None
        future.result()
        summary.added += len(ids)
        if on_batch:
            on_batch(summary)

    def flush() -> None:
        nonlocal in_flight
        if not batch:
            return
        pending = in_flight[1] if in_flight else set()
        candidates = [uid for uid in batch if uid not in pending]  # a repeat of the write in flight
        fresh_ids = set(candidates) - store.existing_ids(candidates)
        fresh = [r for uid, r in batch.items() if uid in fresh_ids]
        summary.duplicates += len(batch) - len(fresh)
        batch.clear()
        vectors = embedder.embed([r.embedding_text() for r in fresh]) if fresh else None
        settle()
        if fresh and vectors is not None:
            in_flight = (writer.submit(store.add, fresh, vectors), {r.uid for r in fresh})
        elif on_batch:
            on_batch(summary)

    try:
        for item in read_records(paths, skip_invalid=skip_invalid):
            if isinstance(item, InvalidLine):
                summary.invalid += 1
                if on_invalid:
                    on_invalid(item)
                continue
            summary.read += 1
            users.add(item.user)
            if item.uid in batch:
                summary.duplicates += 1  # the same record twice in one batch
                continue
            batch[item.uid] = item
            if len(batch) >= batch_size:
                flush()
        flush()
        settle()
    except LogoError as exc:  # a bad line, a missing second file: keep every good record before it
        flush()
        settle()
        summary.users = len(users)
        raise IngestStopped(exc, summary) from exc
    finally:
        writer.shutdown(wait=True)  # never leave a write half-done behind us, even on Ctrl-C
    summary.users = len(users)
    return summary


def count_lines(paths: Iterable[str]) -> int | None:
    """Total lines of the input files, for a progress bar; None when reading stdin."""
    total = 0
    for path in paths:
        if path == "-":
            return None
        try:
            with open(path, "rb") as fh:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except OSError:
            return None
    return total
