"""Each stage of the global memory build, alone, on small hand-made inputs (no Chroma, no embedder)."""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from logo_cli import global_memory
from logo_cli.errors import GlobalMemoryMissing, StoreError, UsageError
from logo_cli.global_memory import records as gbr
from logo_cli.global_memory import stages as gb
from logo_cli.global_memory.build import keep_previous
from logo_cli.global_memory.records import (
    KEYWORD_WORDS_PER_RECORD,
    UNDATED,
    KeywordPeople,
    Records,
    assign_records,
    build_items,
    build_timeline,
    describe_clusters,
    fill_item_communities,
    profile_users,
    time_segments,
)
from logo_cli.global_memory.snapshot import Snapshot, SnapshotWriter
from logo_cli.global_memory.stages import (
    Baseline,
    BuildOptions,
    FitSample,
    choose_k,
    community_candidates,
    draw_sample,
    fit_centroids,
    group_communities,
    k_candidates,
    keyword_candidates,
    measure_drift,
    silhouette_search,
)
from logo_cli.records import Record

from .helpers import make_memory

INF, NAN = math.inf, math.nan


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(centers: int, per: int, dim: int = 12, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """`per` unit vectors around each of `centers` orthogonal axes."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.eye(dim)[:centers], per, axis=0) + noise * rng.normal(size=(centers * per, dim))
    return unit(x).astype(np.float32)


def grouped_users(groups: int, per: int, k: int = 6, seed: int = 0) -> np.ndarray:
    """users x k record counts: each group's users have most of their records in the group's own cluster."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 2, size=(groups * per, k))
    for g in range(groups):
        counts[g * per : (g + 1) * per, g] += 20
    return counts.astype(np.int64)


def records(
    rows: list[tuple[int, int, int, float, float]], k: int, users: int, items: list[str] | None = None, **more: Any
) -> Records:
    """Records from (cluster, user, item, ts, rating) rows; user names u0.., item -1 for none."""
    cluster, user, item, ts, rating = (np.array(col) for col in zip(*rows, strict=True))
    return Records(
        k=k,
        cluster=cluster.astype(np.int32),
        user=user.astype(np.int32),
        item=item.astype(np.int32),
        label=np.full(len(rows), -1, dtype=np.int32),
        ts=ts.astype(np.float64),
        rating=rating.astype(np.float64),
        user_names=[f"u{i}" for i in range(users)],
        item_names=items or [],
        **more,
    )


# ------------------------------------------------------------------------------------ silhouette search


@pytest.mark.parametrize("centers", [2, 3, 5])
def test_silhouette_search_picks_the_number_of_interest_clusters_the_data_has(centers: int) -> None:
    x = blobs(centers, 20)
    k, scores = choose_k(x, k_candidates(len(x)), seed=0)
    assert k == centers
    assert set(scores) == {c for c in k_candidates(len(x)) if c < len(x)}
    assert max(scores.values()) == scores[centers]


@pytest.mark.parametrize("groups", [2, 4])
def test_silhouette_search_picks_the_number_of_communities_the_users_form(groups: int) -> None:
    counts = grouped_users(groups, 10)
    shares = counts / counts.sum(axis=1, keepdims=True)
    c, _ = silhouette_search(shares, community_candidates(len(shares)), 0, n_init=4, sample_size=len(shares))
    assert c == groups
    result = group_communities(counts, seed=0)
    assert result.selection is not None and result.selection["method"] == "silhouette"
    assert result.selection["c"] == groups and len(result.communities) == groups
    labels = result.member.reshape(groups, 10)
    assert all(len(set(row)) == 1 for row in labels)  # one group, one community
    assert len({row[0] for row in labels}) == groups
    assert [cm.top_clusters[0][0] for cm in result.communities] == [int(np.argmax(ct)) for ct in result.centroids]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_silhouette_search_is_one_for_data_it_cannot_split() -> None:
    assert silhouette_search(blobs(1, 2), [2, 3], 0, n_init=1) == (1, {})  # no candidate below the row count
    same = np.ones((6, 4), dtype=np.float32)
    assert silhouette_search(same, [2, 3], 0, n_init=1)[0] == 1  # k-means finds one group only


def test_clusters_and_communities_share_one_search_with_their_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    search = gb.silhouette_search

    def spy(x: np.ndarray, candidates: Any, seed: int, **settings: Any) -> tuple[int, dict[int, float]]:
        calls.append({"rows": len(x), "candidates": list(candidates), **settings})
        return search(x, candidates, seed, **settings)

    monkeypatch.setattr(gb, "silhouette_search", spy)
    choose_k(blobs(3, 10), k_candidates(30), seed=0)
    group_communities(grouped_users(3, 10), seed=0)
    assert calls == [
        {"rows": 30, "candidates": k_candidates(30), "n_init": 1, "minibatch_above": gb.FULL_KMEANS_MAX},
        {"rows": 30, "candidates": list(range(2, 11)), "n_init": 4, "sample_size": 30},
    ]
    assert community_candidates(100) == list(range(2, 17))  # at most 16 communities


# ------------------------------------------------------------------------------------- sample, fit, words


def snapshot_of(folder: Path, rows: list[Record], vectors: np.ndarray, **sizes: int) -> Snapshot:
    """A real snapshot (Parquet) of these records, in small files and row groups so batches cross them."""
    writer = SnapshotWriter(folder / "snap", {"embedder": "fake:test", "dim": vectors.shape[1]}, **sizes)
    metas = [
        {
            "user": r.user,
            "text": r.text,
            **{k: v for k, v in (("ts", r.timestamp), ("item", r.item), ("rating", r.rating)) if v is not None},
            **({"label": r.label} if r.label else {}),
        }
        for r in rows
    ]
    for start in range(0, len(rows), 3):
        writer.add([r.uid for r in rows[start : start + 3]], metas[start : start + 3], vectors[start : start + 3])
    writer.close()
    return Snapshot(folder / "snap")


def snapshot_with(tmp_path: Path, n: int, dim: int = 8) -> Snapshot:
    rows = [Record(user=f"u{i % 4}", text=f"text {i}", uid=f"r{i}", timestamp=float(i)) for i in range(n)]
    return snapshot_of(tmp_path, rows, blobs(2, n // 2, dim=dim), file_rows=4, row_group=2)


def test_sample_reads_a_small_store_whole_and_a_large_one_by_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snap = snapshot_with(tmp_path, 10)
    assert snap.count == 10 and len(snap.files) == 3
    every = [u for b in snap.batches(4) for u in b.uids]
    assert every == [f"r{i}" for i in range(10)]  # the store's order, across files
    sample = draw_sample(snap, seed=0, say=lambda _m: None)
    assert sample.whole and sample.uids == every and np.array_equal(sample.vectors, blobs(2, 5, dim=8))
    assert list(sample.rows) == list(range(10)) and sample.subsample_texts == sample.texts
    monkeypatch.setattr(gb, "FULL_KMEANS_MAX", 5)
    monkeypatch.setattr(gb, "FIT_SAMPLE", 6)
    monkeypatch.setattr(gb, "SAMPLE_SIZE", 4)
    said: list[str] = []
    large = draw_sample(snap, seed=0, say=said.append)
    assert not large.whole and len(large.uids) == 6
    assert large.uids == sorted(large.uids, key=every.index)  # read in store order
    assert len(large.rows) == 4 and list(large.rows) == sorted(large.rows)
    assert large.subsample.shape == (4, 8) and said == ["sampling 6 of 10 records"]
    again = draw_sample(snap, seed=0, say=said.append)
    assert again.uids == large.uids and np.array_equal(again.rows, large.rows)
    positions, rows, whole = gb.sample_plan(10, 0)  # what the Spark engine fits on too
    assert [every[p] for p in positions] == large.uids and np.array_equal(rows, large.rows) and not whole


def test_fit_chooses_or_takes_k_and_returns_unit_centroids() -> None:
    x = blobs(3, 10)
    sample = FitSample([f"r{i}" for i in range(30)], ["t"] * 30, x, np.arange(30), whole=True)
    fit = fit_centroids(sample, 30, BuildOptions(), say=lambda _m: None)
    assert fit.centroids.shape == (3, 12) and np.allclose(np.linalg.norm(fit.centroids, axis=1), 1)
    assert fit.selection["clusters"]["method"] == "silhouette" and fit.selection["clusters"]["k"] == 3
    assert fit.selection["clusters"]["sample"] == 30
    assert sorted(np.argmax(fit.centroids, axis=1)) == [0, 1, 2]  # one centroid per blob
    forced = fit_centroids(sample, 30, BuildOptions(clusters=2), say=lambda _m: None)
    assert forced.centroids.shape == (2, 12) and forced.selection == {"clusters": {"method": "forced", "k": 2}}
    with pytest.raises(UsageError):
        fit_centroids(sample, 30, BuildOptions(clusters=31), say=lambda _m: None)


def learn_keywords(sample: FitSample, centroids: np.ndarray, min_users: int) -> list[dict[str, int]]:
    """What the local engine does for a store the sample holds whole: the candidates, then their people."""
    found = keyword_candidates(sample, centroids)
    people = KeywordPeople(found.words, found.token_pattern)
    people.add(gb._nearest(sample.vectors, centroids), sample.texts, sample.users or sample.uids)
    return people.kept(min_users)


def test_vocabulary_gives_each_cluster_the_words_of_its_own_texts() -> None:
    cooking = ["garlic basil oven recipe dinner", "basil garlic sauce recipe", "oven garlic dinner sauce"]
    films = ["cinema director actors screenplay", "cinema film actors", "screenplay cinema director"]
    vectors = np.repeat(np.eye(2, dtype=np.float32), 3, axis=0)
    sample = FitSample([f"r{i}" for i in range(6)], cooking + films, vectors, np.arange(6), whole=True)
    candidates = learn_keywords(sample, np.eye(2, dtype=np.float32), min_users=1)
    keywords = [list(c) for c in candidates]
    assert keywords[0][0] == "garlic" and set(keywords[0]) <= set(" ".join(cooking).split())
    assert keywords[1][0] == "cinema" and set(keywords[1]) <= set(" ".join(films).split())
    assert candidates[0]["garlic"] == 3 and candidates[1]["cinema"] == 3  # each record its own person here
    # a keyword needs min_users distinct people: three texts by one person name nothing
    alone = FitSample(sample.uids, sample.texts, vectors, np.arange(6), whole=True, users=["p"] * 3 + ["q"] * 3)
    assert learn_keywords(alone, np.eye(2, dtype=np.float32), min_users=2) == [{}, {}]
    # texts of nothing but stop words still give a vocabulary (and no keyword of weight 0)
    empty = FitSample(["a", "b"], ["the and", "of the"], vectors[:2], np.arange(2), whole=True)
    assert learn_keywords(empty, np.eye(2, dtype=np.float32), min_users=1) == [{"the": 2, "and": 1, "of": 1}, {}]


def test_a_record_counts_its_person_for_at_most_two_keywords() -> None:
    """The sensitivity of the keyword release: one record adds its person to at most
    KEYWORD_WORDS_PER_RECORD candidates (its best-ranked), however many it names."""
    people = KeywordPeople([["garlic", "basil", "oven", "sauce"]], r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b")
    people.add(np.zeros(2, dtype=np.int32), ["Sauce, oven; basil and GARLIC", "sauce"], ["a", "b"])
    people.add(np.zeros(1, dtype=np.int32), ["more sauce"], ["b"])  # batch by batch, as the pass adds them
    assert KEYWORD_WORDS_PER_RECORD == 2
    assert people.kept(1) == [{"garlic": 1, "basil": 1, "sauce": 1}]  # b's two records count b once
    assert people.kept(2) == [{}]


# ---------------------------------------------------------------------------------------------- assign


def test_assign_puts_each_record_in_its_nearest_cluster_and_finds_example_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        Record(user="ann", text="a heist", uid="r0", timestamp=5.0, item="Heat", rating=4.0),
        Record(user="bob", text="b", uid="r1", item="Heat", label="good"),
        Record(user="ann", text="c", uid="r2", timestamp=1.0, rating=2.0),
        Record(user="cid", text="shark shark", uid="r3", timestamp=2.0, item="Jaws", label="good"),
        Record(user="bob", text="e", uid="r4", timestamp=3.0, label="bad"),
    ]
    vectors = unit(np.array([[1, 0.1], [0.9, 0.2], [0.1, 1], [0.2, 0.9], [1, 0.3]]))
    snap = snapshot_of(tmp_path, rows, vectors.astype(np.float32), file_rows=3, row_group=2)
    taken: list[str] = []
    take = Snapshot.take

    def spy(self: Snapshot, positions: np.ndarray, **kw: Any) -> Any:
        got = take(self, positions, **kw)
        taken.extend(got.uids)
        return got

    monkeypatch.setattr(Snapshot, "take", spy)
    monkeypatch.setattr(gbr, "PASS_BATCH", 2)
    got = assign_records(snap, np.eye(2, dtype=np.float32), texts={"r0": "a", "r2": "c"})
    assert got.n == 5 and got.k == 2
    assert list(got.cluster) == [0, 0, 1, 1, 0]
    assert got.user_names == ["ann", "bob", "cid"] and list(got.user) == [0, 1, 0, 2, 1]
    assert got.item_names == ["Heat", "Jaws"] and list(got.item) == [0, 0, -1, 1, -1]
    assert got.label_names == ["good", "bad"] and list(got.label) == [-1, 0, -1, 0, 1]
    assert list(got.ts) == [5.0, INF, 1.0, 2.0, 3.0]
    assert np.array_equal(got.rating, [4.0, NAN, 2.0, NAN, NAN], equal_nan=True)
    assert got.similarity_sum == pytest.approx(sum(float(v.max()) for v in vectors))
    assert got.user_counts.tolist() == [[1, 1], [2, 0], [0, 1]]
    assert sorted(uid for found in got.examples for _, _, uid in found) == ["r0", "r1", "r2", "r3", "r4"]
    fetched = {"r1": "Heat: b", "r3": "Jaws: shark shark", "r4": "e"}  # as the embedder read them
    assert got.texts == {"r0": "a", "r2": "c", **fetched}
    assert sorted(taken) == ["r1", "r3", "r4"]  # only what the fit sample did not hold
    assert got.item_vectors is not None
    heat = got.item_vectors[got.vector_row[0]]
    assert np.allclose(heat, vectors[0] + vectors[1])
    assert got.item_terms == {0: Counter({"heist": 1}), 1: Counter({"shark": 1})}  # each text's terms once


# -------------------------------------------------------------------------------------------- timeline


def timeline_records() -> Records:
    rows = [  # (cluster, user, item, ts, rating)
        (0, 0, 0, 3.0, 4.0),
        (1, 1, -1, 1.0, NAN),
        (0, 1, 0, 1.0, 2.0),
        (0, 0, 0, 2.0, NAN),
        (1, 0, 1, 5.0, 5.0),
        (0, 2, 0, INF, 3.0),  # undated
    ]
    return records(rows, k=2, users=3, items=["X", "Y"])


def test_timeline_sorts_each_cluster_by_time_with_cumulative_ratings_and_first_times() -> None:
    tl = build_timeline(timeline_records())
    assert tl.record_offsets.tolist() == [0, 4, 6]
    assert tl.record_ts.tolist() == [1.0, 2.0, 3.0, INF, 1.0, 5.0]
    assert tl.rating_cum.tolist() == [2.0, 2.0, 6.0, 9.0, 0.0, 5.0]  # restarts at each cluster
    assert tl.rated_cum.tolist() == [1, 1, 2, 3, 0, 1]
    assert tl.user_offsets.tolist() == [0, 3, 5]
    assert tl.user_first_ts.tolist() == [1.0, 2.0, INF, 1.0, 5.0]  # each (cluster, user)'s first record
    assert tl.rater_offsets.tolist() == [0, 3, 4]
    assert tl.rater_first_ts.tolist() == [1.0, 3.0, INF, 5.0]  # ... and first rating
    assert tl.item_first_ts == {0: {"X": [1.0, 2.0, UNDATED]}, 1: {"Y": [5.0]}}


def test_timeline_keeps_the_most_shared_items_of_each_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gbr, "ITEM_CANDIDATES", 2)
    rows = [(0, u, i, float(u), NAN) for i, users in enumerate([1, 3, 2, 3]) for u in range(users)]
    tl = build_timeline(records(rows, k=1, users=3, items=["d", "c", "b", "a"]))
    assert list(tl.item_first_ts[0]) == ["a", "c"]  # most users first, ties by name, ITEM_CANDIDATES kept


# ----------------------------------------------------------------------------------------------- items


def item_records() -> Records:
    rows = [  # (cluster, user, item, ts, rating)
        (0, 0, 0, 1.0, 4.0),
        (0, 0, 0, 5.0, 2.0),  # the same user again
        (0, 1, 0, 2.0, NAN),  # a mention without a rating still counts its user
        (0, 2, 0, 3.0, 5.0),
        (0, 0, 1, 4.0, 3.0),
        (0, 1, 1, 6.0, 1.0),
        (0, 2, -1, 7.0, 5.0),  # about no item
    ]
    return records(
        rows,
        k=1,
        users=3,
        items=["A", "B"],
        item_vectors=np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32),
        vector_row={0: 0, 1: 1},
        item_terms={0: Counter({"tense": 3, "heist": 3, "solo": 1}), 1: Counter({"tense": 2})},  # people per term
    )


def test_items_count_distinct_users_and_keep_only_items_min_users_share() -> None:
    table = build_items(item_records(), min_users=3)
    assert table is not None and table.names == ["A"]
    snap = table.snapshot(None, min_users=3)
    assert snap.users.tolist() == [3] and snap.ratings.tolist() == [3]
    assert math.isnan(snap.rating_mean[0])  # rated by 2 people only: private
    assert table.user_ts.tolist() == [1.0, 2.0, 3.0] and table.user_index.tolist() == [0, 1, 2]
    assert table.rating_ts.tolist() == [1.0, 3.0, 5.0] and table.rating_cum.tolist() == [4.0, 9.0, 11.0]
    assert table.rater_ts.tolist() == [1.0, 3.0]
    assert np.allclose(table.vectors, [[0.6, 0.8]])
    # a term needs min_users of the item's people: one person's "solo" is none (ties go alphabetically)
    assert table.term_offsets.tolist() == [0, 2] and table.term_vocabulary.tolist() == ["heist", "tense"]

    both = build_items(item_records(), min_users=2)
    assert both is not None and both.names == ["A", "B"]
    assert both.snapshot(None, min_users=2).users.tolist() == [3, 2]
    assert both.rating(0, None, min_users=2) == (pytest.approx(11 / 3), 3)
    assert both.rating(1, 5.0, min_users=2) is None  # as of t=5 only one person had rated B
    assert both.term_match(["heist"]).tolist()[1] == 0 and both.term_match(["heist"])[0] > 0
    assert both.term_match(["tense"])[1] > 0 and both.term_match(["solo"]).tolist() == [0, 0]
    assert build_items(item_records(), min_users=4) is None


def test_items_keep_the_most_shared_when_there_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gbr, "ITEM_TABLE_MAX", 1)
    table = build_items(item_records(), min_users=2)
    assert table is not None and table.names == ["A"]


def test_item_users_get_their_community_once_communities_exist() -> None:
    table = build_items(item_records(), min_users=3)
    assert table is not None and table.user_community.tolist() == [0, 1, 2]  # user indices until then
    fill_item_communities(table, np.array([1, -1, 0], dtype=np.int32))
    assert table.user_community.tolist() == [1, -1, 0]
    assert table.snapshot(None, 3, community=1).community_users.tolist() == [1]  # type: ignore[union-attr]


# -------------------------------------------------------------------------------- clusters and profiles


def test_clusters_describe_sizes_users_items_ratings_labels_and_privacy() -> None:
    recs = timeline_records()
    recs.label = np.array([0, -1, 1, 1, 0, 1], dtype=np.int32)
    recs.label_names = ["pos", "neg"]
    recs.examples = [[(0.9, "u0", "r0"), (0.8, "u0", "r3"), (0.7, "u1", "r2")], [(0.9, "u1", "r1")]]
    recs.texts = {"r0": "first", "r3": "same user", "r2": "second", "r1": "x" * 300}
    segments = time_segments(recs.ts, 2)
    assert segments == pytest.approx([1.0, 3.0, 5.0])
    words = [{"film": 3}, {"trip": 2}]
    clusters = describe_clusters(recs, build_timeline(recs), words, segments, min_users=3)
    first, second = clusters
    assert (first.size, first.users, first.private) == (4, 3, False)
    assert first.top_items == [("X", 3)] and first.rating_mean == 3.0 and first.rating_count == 3
    # a label needs min_users people: "neg" has three, "pos" one person in each cluster
    assert first.labels == {"neg": 3} and second.labels == {} and first.keywords == ["film"]
    assert first.keyword_people == {"film": 3}
    assert first.examples == ["first", "second"]  # one per user
    assert (second.size, second.users, second.private) == (2, 2, True)
    assert second.top_items == [] and second.rating_mean is None and second.rating_count == 0
    assert second.examples == ["x" * 240]
    assert first.trend == [0.75, 0.0] and second.trend == [0.25, 1.0]  # shares of each period's records
    assert time_segments(recs.ts, 0) == [] and time_segments(np.array([INF]), 4) == []


def test_profiles_give_each_user_their_distribution_and_rating_mean() -> None:
    profiles = profile_users(timeline_records())
    assert list(profiles) == ["u0", "u1", "u2"]
    ann = profiles["u0"]
    assert ann.history == 3 and ann.distribution == {
        0: pytest.approx(2 / 3, abs=1e-4),
        1: pytest.approx(1 / 3, abs=1e-4),
    }
    assert ann.rating_mean == 4.5 and ann.community is None
    assert profiles["u1"].rating_mean == 2.0 and profiles["u2"].distribution == {0: 1.0}


# ------------------------------------------------------------------------------------------ communities


def test_communities_forced_kept_or_none() -> None:
    counts = np.array([[5, 0], [4, 1], [0, 6], [1, 5], [1, 1]], dtype=np.int64)  # the last user is too new
    forced = group_communities(counts, seed=0, forced=2)
    assert forced.selection == {"method": "forced", "c": 2}
    assert forced.member[4] == -1 and forced.member[0] == forced.member[1] != forced.member[2] == forced.member[3]
    assert sorted(c.size for c in forced.communities) == [2, 2]
    kept = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    update = group_communities(counts, seed=0, forced=3, kept=kept)  # kept centroids win over forced
    assert update.selection is None and np.array_equal(update.centroids, kept)
    assert update.member.tolist() == [1, 1, 0, 0, -1]
    assert [(c.id, c.size, c.top_clusters[0][0]) for c in update.communities] == [(0, 2, 1), (1, 2, 0)]
    nobody = group_communities(counts[4:], seed=0)
    assert nobody.communities == [] and nobody.centroids.shape == (0, 2) and nobody.selection is None
    assert nobody.member.tolist() == [-1]


# ----------------------------------------------------------------------------------------------- drift


def test_drift_flags_a_rebuild_when_similarity_drops_or_many_records_are_new() -> None:
    full = measure_drift(48.0, 100, None)
    assert full == {
        "mean_similarity": 0.48,
        "baseline_similarity": 0.48,
        "baseline_records": 100,
        "rebuild_advised": False,
    }
    baseline = Baseline(similarity=0.5, records=100)
    steady = measure_drift(110 * 0.49, 110, baseline)
    assert steady["similarity_drop"] == pytest.approx(0.01) and steady["new_records_share"] == pytest.approx(0.0909)
    assert steady["rebuild_advised"] is False
    dropped = measure_drift(110 * 0.47, 110, baseline)
    assert dropped["similarity_drop"] == pytest.approx(0.03) and dropped["rebuild_advised"] is True
    grown = measure_drift(200 * 0.5, 200, baseline)
    assert grown["similarity_drop"] == 0 and grown["new_records_share"] == 0.5 and grown["rebuild_advised"] is True
    unknown = measure_drift(40.0, 100, Baseline(similarity=None, records=100))
    assert unknown["baseline_similarity"] == 0.4 and unknown["rebuild_advised"] is False


# ----------------------------------------------------------------------------------- what --update keeps


def test_update_keeps_centroids_community_centroids_and_the_drift_baseline(tmp_path: Path) -> None:
    home = tmp_path / "global"
    with pytest.raises(GlobalMemoryMissing):
        keep_previous(home, "fake:2")
    centroids = np.eye(2, dtype=np.float32)
    previous = make_memory(
        version=global_memory.new_version(),
        built_at=time.time(),
        embedder="fake:2",
        records=40,
        selection={"clusters": {"method": "forced", "k": 2}, "seconds": 1.0},
        drift={"mean_similarity": 0.4, "baseline_similarity": 0.5, "baseline_records": 30},
        centroids=centroids,
        community_centroids=np.zeros((0, 2), dtype=np.float32),
    )
    global_memory.save(previous, home)
    kept = keep_previous(home, "fake:2")
    assert np.array_equal(kept.fit.centroids, centroids)
    assert kept.fit.selection == {"clusters": {"method": "forced", "k": 2}, "seconds": 1.0, "update": True}
    assert kept.community_centroids is None  # none before: communities are chosen anew
    assert kept.baseline == Baseline(similarity=0.5, records=30)
    with pytest.raises(StoreError):
        keep_previous(home, "fake:3")
