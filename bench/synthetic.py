"""Synthetic but realistic stores for scale benchmarks: 384-d vectors around a few hundred topic centres.

Each topic has its own small vocabulary, items and rating tendency; each user likes a few topics (some users
only one: the biased ones) and has a heavy-tailed history length (mean about `per_user` records). Vectors are
the topic centre plus Gaussian noise (cosine about 0.7 to the centre), unit length, as sentence embeddings are.
Written straight into a logo store (stamped with the default embedder, so `ask` can embed real questions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

DIM = 384
TOPICS = 300
_WORD_LIST = """apple river engine violin garden pixel harbor comet falcon marble canyon lantern tundra saffron
quartz meadow glacier cactus bamboo coral summit velvet ember orchid thunder prairie walnut sailor cobalt
raven basil tiger cedar lotus pepper zephyr mango nickel oasis pebble quiver ripple sable tango umber violet
willow yarrow zinnia acorn bison cinder dune ferret gecko hazel iris jasper kiwi lemur maple nutmeg olive
parsley quince rhubarb sorrel thistle urchin vanilla wombat yucca almond birch clover daisy elm fennel"""
WORDS = _WORD_LIST.split()


def topic_words(topic: int) -> list[str]:
    rng = np.random.default_rng(10_000 + topic)
    return [f"{WORDS[i]}{topic}" for i in rng.choice(len(WORDS), 6, replace=False)]


def synthetic_pages(
    records: int, *, users: int | None = None, seed: int = 0, batch: int = 5000
) -> Iterator[tuple[list[str], list[dict[str, Any]], np.ndarray]]:
    """The synthetic records, `batch` at a time: (ids, fields, vectors). The same seed gives the same records."""
    users = users or max(records // 50, 10)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((TOPICS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # histories: heavy-tailed (log-normal) lengths scaled to the total
    lengths = rng.lognormal(0.0, 1.0, users)
    lengths = np.maximum(1, np.round(lengths / lengths.sum() * records)).astype(int)
    lengths[-1] += records - lengths.sum()
    if lengths[-1] < 1:  # rounding overshot: take it back from the longest histories
        lengths[np.argmax(lengths)] -= 1 - lengths[-1]
        lengths[-1] = 1
    favourites = [rng.choice(TOPICS, 1 if u % 7 == 0 else int(rng.integers(2, 6)), replace=False) for u in range(users)]
    user_of = np.repeat(np.arange(users), lengths)
    rng.shuffle(user_of)  # histories interleave in time, as in a real log
    vocab = [topic_words(t) for t in range(TOPICS)]
    tendency = rng.uniform(2.0, 4.5, TOPICS)
    t0 = 1.6e9
    for start in range(0, records, batch):
        who = user_of[start : start + batch]
        topics = np.array([rng.choice(favourites[u]) for u in who])
        vectors = centres[topics] + rng.standard_normal((len(who), DIM)).astype(np.float32) / np.sqrt(DIM)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        picks = rng.integers(0, 6, (len(who), 3))
        items = rng.integers(0, 40, len(who))
        ratings = np.clip(np.round(tendency[topics] + rng.normal(0, 0.8, len(who)) * 2) / 2, 0.5, 5.0)
        uids, metas = [], []
        for i, (u, t) in enumerate(zip(who, topics, strict=True)):
            words = vocab[t]
            uids.append(f"syn-{start + i}")
            metas.append(
                {
                    "user": f"user{u:05d}",
                    "text": f"Spent the evening with {words[picks[i, 0]]} and {words[picks[i, 1]]}; the "
                    f"{words[picks[i, 2]]} part stayed with me.",
                    "ts": t0 + (start + i) * (6e7 / records),
                    "item": f"topic{t}-item{items[i]}",
                    "rating": float(ratings[i]),
                }
            )
        yield uids, metas, vectors


def write_store(
    home: Path,
    records: int,
    *,
    users: int | None = None,
    seed: int = 0,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> dict[str, float]:
    """Write `records` synthetic records for `users` users (default records/50) into `home`'s store."""
    from logo_cli.config import Settings
    from logo_cli.embed import load_embedder
    from logo_cli.local_memory.store import Store
    from logo_cli.records import Record

    embedder = load_embedder(Settings(home=home).embedder_spec())  # stamp only: vectors are made here
    store = Store(home / "store").open(embedder.id, embedder.dim, create=True)
    started, written = time.perf_counter(), 0
    for uids, metas, vectors in synthetic_pages(records, users=users, seed=seed, batch=batch):
        rows = [
            Record(user=m["user"], text=m["text"], uid=uid, timestamp=m["ts"], item=m["item"], rating=m["rating"])
            for uid, m in zip(uids, metas, strict=True)
        ]
        store.add(rows, vectors)
        written += len(rows)
        if progress:
            progress(written)
    return {"records": written, "users": users or max(records // 50, 10), "write_s": time.perf_counter() - started}


def write_snapshot(
    out: Path, records: int, *, users: int | None = None, seed: int = 0, batch: int = 5000
) -> dict[str, float]:
    """The same synthetic records written straight into a snapshot (`logo snapshot`'s format), stamped with the
    default embedder: for sizes whose Chroma store would take hours to write (10M records: about 2,300
    records/s into Chroma here, against tens of thousands a second into Parquet)."""
    from logo_cli.config import Settings
    from logo_cli.embed import load_embedder
    from logo_cli.global_memory.snapshot import SnapshotWriter
    from logo_cli.local_memory.store import SCHEMA_VERSION

    embedder = load_embedder(Settings().embedder_spec())
    writer = SnapshotWriter(
        out, {"logo_schema": SCHEMA_VERSION, "embedder": embedder.id, "dim": embedder.dim, "source": "synthetic"}
    )
    started = time.perf_counter()
    for uids, metas, vectors in synthetic_pages(records, users=users, seed=seed, batch=batch):
        writer.add(uids, metas, vectors)
    writer.close()
    return {"records": writer.written, "write_s": time.perf_counter() - started}
