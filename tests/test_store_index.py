"""The user index: a user's records and vectors read without Chroma, and the index never loses or leaks a
record, whatever a crash left behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from logo_cli.embed import load_embedder
from logo_cli.local_memory.ingest import ingest
from logo_cli.local_memory.store import USER_INDEX_FILE, Store, user_filter
from logo_cli.local_memory.user_index import UserIndex
from logo_cli.records import Record, read_records

from .helpers import make_records, write_jsonl

USERS = {"ann": ("films", 9), "bob": ("cooking", 7), "cy": ("travel", 1)}


def filled(tmp_path: Path) -> tuple[Store, Path, list[Record]]:
    source = write_jsonl(tmp_path / "in.jsonl", make_records(USERS))
    embedder = load_embedder("fake")
    store = Store(tmp_path / "store")
    ingest([str(source)], store, embedder, batch_size=4)
    records = [r for r in read_records([str(source)]) if isinstance(r, Record)]
    return store, source, records


def reopen(path: Path) -> Store:
    embedder = load_embedder("fake")
    return Store(path).open(embedder.id, embedder.dim, create=False)


def by_filter(store: Store, user: str, before: float | None = None) -> set[str]:
    """What Chroma's own where-filter says, to compare the index against."""
    return set(store.collection.get(where=user_filter(user, before), include=[])["ids"])


def test_histories_through_the_index_match_chromas_filter(tmp_path: Path) -> None:
    store, _, records = filled(tmp_path)
    assert (tmp_path / "store" / USER_INDEX_FILE).is_file()
    times = sorted(r.timestamp for r in records if r.timestamp is not None)
    for user in USERS:
        for before in (None, times[len(times) // 3], times[-1] + 1, times[0]):
            got = {r.uid for r in store.user_history(user, before)[0]}
            assert got == by_filter(store, user, before)
            assert set(store.user_vectors(user, before)[0]) == got


def test_a_store_without_an_index_gets_one_built(tmp_path: Path) -> None:
    store, _, records = filled(tmp_path)
    expected = {u: by_filter(store, u) for u in USERS}
    (tmp_path / "store" / USER_INDEX_FILE).unlink()  # a store written before the index existed
    store = reopen(tmp_path / "store")
    assert UserIndex(tmp_path / "store" / USER_INDEX_FILE).count() == len(records)
    for user in USERS:
        assert {r.uid for r in store.user_history(user)[0]} == expected[user]


def test_a_crash_between_chroma_and_the_index_is_repaired_from_chroma(tmp_path: Path) -> None:
    store, source, records = filled(tmp_path)
    index = UserIndex(tmp_path / "store" / USER_INDEX_FILE)
    anns = [r.uid for r in records if r.user == "ann"]
    index.dirty()  # killed after Chroma took a batch, before the index did: the batch is missing here
    index.remove(anns[:3])
    store = reopen(tmp_path / "store")
    assert {r.uid for r in store.user_history("ann")[0]} == set(anns) == by_filter(store, "ann")
    assert index.ready(store.stamp()) and index.count() == len(records)  # rebuilt from Chroma
    index.dirty()  # killed in a forget, after Chroma dropped ann's first record, before the index did
    store.collection.delete(ids=anns[:1])
    store = reopen(tmp_path / "store")
    assert anns[0] not in {r.uid for r in store.user_history("ann")[0]}  # gone from reads too
    summary = ingest([str(source)], store, load_embedder("fake"))
    assert summary.added == 1
    assert {r.uid for r in store.user_history("ann")[0]} == set(anns)


def test_a_ready_index_is_read_without_chroma(tmp_path: Path) -> None:
    filled(tmp_path)
    store = reopen(tmp_path / "store")
    assert store._collection is None  # opened from the index alone
    records, vectors = store.user_history("ann")
    assert len(records) == 9 and vectors.shape == (9, load_embedder("fake").dim)
    assert store._collection is None
    assert by_filter(store, "ann") == {r.uid for r in records}  # Chroma opens when something needs it


def test_forgetting_removes_ids_from_the_index(tmp_path: Path) -> None:
    store, _, _ = filled(tmp_path)
    store.delete(store.user_ids("bob"))
    assert store.user_ids("bob") == [] and store.user_history("bob")[0] == []
    assert UserIndex(tmp_path / "store" / USER_INDEX_FILE).ids("bob") == []


def test_a_wrong_index_entry_never_leaks_another_users_record(tmp_path: Path) -> None:
    store, _, records = filled(tmp_path)
    bobs = [r.uid for r in records if r.user == "bob"]
    index = UserIndex(tmp_path / "store" / USER_INDEX_FILE)
    index.db.execute("UPDATE records SET user = 'ann' WHERE uid = ?", (bobs[0],))  # corrupt it on purpose
    store = reopen(tmp_path / "store")
    assert bobs[0] not in {r.uid for r in store.user_history("ann")[0]}
    ids, vectors = store.user_vectors("ann")
    hits, _ = store.nearest("ann", ids, vectors, np.ones(store.stamp()["dim"], dtype=np.float32), 20)
    assert all(h.record.user == "ann" for h in hits)


def test_a_schema_1_store_keeps_its_text_in_documents(tmp_path: Path) -> None:
    """Stores written before the text moved into metadata stay readable, and keep their layout."""
    import chromadb

    embedder = load_embedder("fake")
    client = chromadb.PersistentClient(path=str(tmp_path / "store"))
    old = client.create_collection(
        "records",
        metadata={"logo_schema": 1, "embedder": embedder.id, "dim": embedder.dim},
        configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )
    old.add(ids=["a1"], embeddings=embedder.embed(["old text"]), documents=["old text"], metadatas=[{"user": "ann"}])
    del client, old
    store = reopen(tmp_path / "store")
    assert [r.text for r in store.user_history("ann")[0]] == ["old text"]
    store.add([Record(user="ann", text="new text", uid="a2")], embedder.embed(["new text"]))
    got = store.collection.get(ids=["a2"], include=["documents", "metadatas"])
    assert got["documents"] == ["new text"] and "r" not in got["metadatas"][0]
    assert sorted(r.text for r in store.user_history("ann")[0]) == ["new text", "old text"]


def test_rows_an_older_logo_wrote_send_reads_to_chroma(tmp_path: Path) -> None:
    """An older logo keeps ids only; its rows must not break a read, which then goes to Chroma."""
    store, _, records = filled(tmp_path)
    anns = {r.uid for r in records if r.user == "ann"}
    index = UserIndex(tmp_path / "store" / USER_INDEX_FILE)
    index.db.execute("UPDATE records SET fields = NULL, vector = NULL WHERE uid = ?", (sorted(anns)[0],))
    store = reopen(tmp_path / "store")
    assert {r.uid for r in store.user_history("ann")[0]} == anns
    assert set(store.user_vectors("ann")[0]) == anns


def test_a_write_tells_long_running_readers_before_it_starts(tmp_path: Path) -> None:
    store, _, records = filled(tmp_path)
    generation = (tmp_path / "store" / "logo-generation").read_text()
    index = UserIndex(tmp_path / "store" / USER_INDEX_FILE)

    class Killed(Exception):
        pass

    def die(*_: object, **__: object) -> None:
        raise Killed

    store.collection.delete = die  # type: ignore[method-assign]  # killed inside Chroma's delete
    with pytest.raises(Killed):
        store.delete([records[0].uid])
    assert (tmp_path / "store" / "logo-generation").read_text() != generation  # a server would look again...
    assert not index.ready(store.stamp())  # ...and find the index dirty, so it reads Chroma
