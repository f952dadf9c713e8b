"""What memory knows about a user and an item (`evidence`), the collaborative neighbours it reads
(`global_memory.collaborative`), item names as people write them, and stated preferences, on a hand-made
global memory whose every number can be worked out by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from logo_cli.evidence import ITEM_PRIOR, NEIGHBOUR_PRIOR, OFFSET_PRIOR, UserEvidence, liked_weights, stated_scores
from logo_cli.global_memory import Cluster, GlobalMemory, ItemTable
from logo_cli.global_memory.collaborative import fit_neighbours, neighbours_of
from logo_cli.global_memory.model import name_keys, relative_diversity
from logo_cli.modes import Memory
from logo_cli.preferences import clauses, polarity
from logo_cli.records import Record

from .helpers import make_memory

E = np.eye(4, dtype=np.float32)


def table() -> ItemTable:
    """Four films. A: people 0-3 (t=1..4), rated 4, 4, 2, 2 (mean 3). B: people 0-2, rated 5 each. C: people
    3-5. D: people 0, 1 at t=1, 2 and people 2, 6 at t=10, 11. So A and B share 3 people (neighbours), A and C
    one (never neighbours: fewer than min_users), A and D three, but only from t=10."""
    people = [
        [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)],
        [(0, 1.0), (1, 2.0), (2, 3.0)],
        [(3, 5.0), (4, 6.0), (5, 7.0)],
        [(0, 1.0), (1, 2.0), (2, 10.0), (6, 11.0)],
    ]
    ratings = [[(1.0, 4.0), (2.0, 4.0), (3.0, 2.0), (4.0, 2.0)], [(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)], [], []]
    flat = [x for p in people for x in p]
    rating_ts = np.array([t for r in ratings for t, _ in r])
    rating_cum = np.concatenate([np.cumsum([v for _, v in r]) for r in ratings if r])
    rating_offsets = np.cumsum([0] + [len(r) for r in ratings])
    return ItemTable(
        names=["A (1990)", "B (1991)", "C (1992)", "Matrix, The (1999)"],
        vectors=np.stack([E[0], E[0], E[1], E[0]]).astype(np.float32),
        rating_ts=rating_ts,
        rating_cum=rating_cum,
        offsets=rating_offsets,
        rater_ts=rating_ts.copy(),
        rater_offsets=rating_offsets.copy(),
        user_ts=np.array([t for _, t in flat]),
        user_offsets=np.cumsum([0] + [len(p) for p in people]),
        user_community=np.full(len(flat), -1, dtype=np.int32),
        user_index=np.array([u for u, _ in flat], dtype=np.int32),
    )


def memory() -> GlobalMemory:
    clusters = [
        Cluster(c, 10, 5, [f"k{c}"], [], rating, 10 if rating else 0, {}, [], [], False)
        for c, rating in enumerate([4.0, 3.0, None, None])
    ]
    return make_memory(
        version="v-evidence",
        options={"min_users": 3},
        records=20,
        clusters=clusters,
        rating_range=(0.5, 5.0),
        centroids=E.copy(),
        community_centroids=np.zeros((0, 4), np.float32),
        items=table(),
    )


def test_neighbours_are_items_enough_people_share() -> None:
    near = fit_neighbours(table(), None, min_users=3)
    rows, sims = near.neighbours(0)
    assert set(rows.tolist()) == {1, 3}  # C shares one person with A: never a neighbour
    assert sims[list(rows).index(1)] == pytest.approx(3 / np.sqrt(4 * 3))
    early = fit_neighbours(table(), 5.0, min_users=3)
    assert early.neighbours(0)[0].tolist() == [1]  # before t=10, A and D shared only two people
    weights = np.array([1.0, 0.5])
    dense = np.zeros((4, 4))
    for i in range(4):
        idx, s = near.neighbours(i)
        dense[i, idx] = s
    assert near.scores(np.array([0, 3]), weights) == pytest.approx(weights @ dense[[0, 3]])


def test_as_of_views_refit_their_neighbours_once() -> None:
    full = memory()
    assert neighbours_of(full) is neighbours_of(full)  # fitted on first use, then kept
    view = replace(full, as_of_time=5.0)
    assert neighbours_of(view) is neighbours_of(replace(full, as_of_time=5.0))  # cached per (version, time)
    assert 3 not in neighbours_of(view).neighbours(0)[0].tolist()


def history() -> tuple[list[Record], np.ndarray]:
    """The user rated B 4 (everyone else 5) and one unnamed film in cluster 1 (rated 3 on average) 2."""
    records = [
        Record("u", "B", "1", item="B (1991)", rating=4.0, timestamp=20.0),
        Record("u", "something", "2", item="Unknown", rating=2.0, timestamp=21.0),
    ]
    return records, np.stack([E[0], E[1]]).astype(np.float32)


def test_the_estimate_is_population_plus_offset_plus_neighbours() -> None:
    mem = memory()
    records, vectors = history()
    evidence = UserEvidence(mem, mem, records, vectors, Memory.LOGO)
    population_a = (4 * 3.0 + ITEM_PRIOR * 4.0) / (4 + ITEM_PRIOR)  # A's mean 3, its cluster's 4
    population_b = (3 * 5.0 + ITEM_PRIOR * 4.0) / (3 + ITEM_PRIOR)
    residuals = [4.0 - population_b, 2.0 - 3.0]  # B against its population rating, the other against cluster 1
    offset = sum(residuals) / (2 + OFFSET_PRIOR)
    assert evidence.offset == (pytest.approx(offset), 2)
    s = 3 / np.sqrt(4 * 3)  # A's similarity to B, the only rated neighbour
    near = s * (residuals[0] - offset) / (s + NEIGHBOUR_PRIOR)
    [a] = evidence.items([0])
    assert a.population == pytest.approx(population_a)
    assert a.neighbours == pytest.approx(near)
    assert a.estimate == pytest.approx(population_a + offset + near)
    assert a.rating_mean == 3.0 and a.ratings == 4 and a.raters == 4
    assert a.because == "B (1991)" and a.together > 0  # liked B, and the same people have A


def test_memory_modes_read_what_they_may() -> None:
    mem = memory()
    records, vectors = history()
    [glob] = UserEvidence(mem, mem, records, vectors, Memory.GLOBAL).items([0])
    assert glob.offset is None and glob.neighbours is None and glob.together == 0 and glob.content == 0
    assert glob.estimate == pytest.approx(glob.population)
    [local] = UserEvidence(None, mem, records, vectors, Memory.LOCAL).items([0])
    assert local.population is None and local.raters == 0 and local.together == 0  # no other person
    assert local.estimate == pytest.approx(4.0, abs=0.01)  # their own rating of what is most like A (B)
    [none] = UserEvidence(None, mem, [], np.zeros((0, 4), np.float32), Memory.NONE).items([0])
    assert none.estimate is None and none.content == 0


def test_stated_dislikes_are_not_liked() -> None:
    records = [
        Record("u", "I can't stand horror films", "1"),
        Record("u", "Loved it", "2", rating=5.0),
        Record("u", "Dull", "3", rating=1.0),
        Record("u", "went to Porto", "4"),
    ]
    assert liked_weights(records).tolist() == [0.0, 1.0, 0.0, 0.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "I have a strong aversion to online courses and prefer in-person classes.",
            [("I have a strong aversion to online courses", -1), ("prefer in-person classes.", 1)],
        ),
        ("I don't enjoy games with pixel art graphics.", [("I don't enjoy games with pixel art graphics.", -1)]),
        ("I'm vegetarian", [("I'm vegetarian", 1)]),
        ("I avoid loud bars; crowded clubs too", [("I avoid loud bars", -1), ("crowded clubs too", -1)]),
    ],
)
def test_stated_preferences_are_read_clause_by_clause(text: str, expected: list[tuple[str, int]]) -> None:
    assert clauses(text) == expected
    assert polarity(text) == expected[0][1]


def test_options_are_scored_against_what_the_user_said() -> None:
    said = np.stack([E[0], E[1]])  # avoids what lies along axis 0, likes axis 1
    options = np.stack([E[0], E[1], E[2]])
    score, liked, avoided, near = stated_scores(options, said, [-1, 1])
    assert score.tolist() == [-1.0, 1.0, 0.0]
    assert liked == [1, 1, 1] and avoided == [0, 0, 0] and near.tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("typed", "row"),
    [
        ("Matrix, The (1999)", 3),
        ("The Matrix", 3),
        ("the matrix (1999)", 3),
        ("THE MATRIX!", 3),
        ("b", 1),
        ("Heat", None),
    ],
)
def test_items_are_found_as_people_write_them(typed: str, row: int | None) -> None:
    assert table().find(typed) == row
    assert name_keys("Seven (a.k.a. Se7en) (1995)")[-1] == "seven"


def test_diversity_is_measured_against_a_random_history_of_the_same_length() -> None:
    population = np.array([10.0, 10.0, 10.0, 10.0])
    assert relative_diversity(np.array([20.0, 0, 0, 0]), population) == 0.0
    assert relative_diversity(np.array([5.0, 5.0, 5.0, 5.0]), population) == 1.0  # at most 1
    narrow = relative_diversity(np.array([17.0, 1.0, 1.0, 1.0]), population)
    assert 0 < narrow < 0.7
    # the same shape over more clusters, or a longer history, reads the same way
    wide_population = np.full(64, 10.0)
    assert relative_diversity(np.array([17.0, 1, 1, 1] + [0] * 60), wide_population) < 0.7
