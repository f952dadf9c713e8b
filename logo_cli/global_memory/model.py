"""Global memory: what the whole population shares. This module holds its data model, the queries the
mediator makes and the as-of-time view; `versions` saves and loads it, `build` computes it.

Every statistic can be recomputed from the timeline as of any moment (`as_of`), so an answer `--at` a time
never uses what happened after it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import StoreError

MIN_HISTORY_FOR_COMMUNITY = 3  # fewer records cannot place a user; they are placed at ask time
EXACT_SUMMARY = {
    "epsilon": "inf",
    "exact": True,
    "note": "built with --epsilon inf: population statistics are exact and protect nobody (research only)",
}


@dataclass
class Cluster:
    id: int
    size: int
    users: int
    keywords: list[str]
    top_items: list[tuple[str, int]]  # (item, distinct users >= min_users), most shared first
    rating_mean: float | None  # None unless at least min_users distinct users rated
    rating_count: int
    labels: dict[str, int]
    examples: list[str]  # texts nearest the centroid, from distinct users (for the operator, never prompts)
    trend: list[float]  # share of each time segment's records that fall in this cluster
    private: bool  # fewer than min_users distinct users: never shown to other users
    description: str | None = None  # optional one-line summary written by the model (--describe)
    # keyword candidates, best first, with the distinct people who used each (>= min_users; noisy when released)
    keyword_people: dict[str, int] = field(default_factory=dict)


@dataclass
class UserProfile:
    user: str
    history: int
    distribution: dict[int, float]  # cluster id -> share of the user's records
    diversity: float  # relative_diversity: 0 (one cluster) .. 1 (as varied as a random history of its length)
    dominant: list[int]  # clusters holding most of the user's records, largest first
    community: int | None
    rating_mean: float | None = None


@dataclass
class Community:
    id: int
    size: int
    top_clusters: list[tuple[int, float]]  # (cluster id, mean share among members)


@dataclass
class Timeline:
    """Per-cluster records and (cluster, user) first appearances, sorted by time (undated = +inf).

    `record_offsets[c]:record_offsets[c+1]` slices cluster c in `record_ts`, `rating_cum` and `rated_cum`
    (cumulative rating sums and counts); `user_offsets` slices `user_first_ts` the same way.
    """

    record_ts: np.ndarray
    record_offsets: np.ndarray
    rating_cum: np.ndarray
    rated_cum: np.ndarray
    user_first_ts: np.ndarray
    user_offsets: np.ndarray
    rater_first_ts: np.ndarray  # (cluster, user) first *rating*, for the min_users rule on rating means
    rater_offsets: np.ndarray
    item_first_ts: dict[int, dict[str, list[float]]]  # cluster -> candidate item -> its users' first times

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, np.ndarray)}


TITLE_WORDS = 16  # the longest title, in words, that a question is searched for
_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_MOVED_ARTICLE = re.compile(r"^(.*),\s*(the|a|an|les?|la|l'|die|der|das|el|il)$")


def name_keys(name: str) -> tuple[str, ...]:
    """How an item's name is matched, most exact first: lowercase words with the article in front, with the
    trailing year when there is one, then without it, then without a parenthesis, then without the article."""
    text = name.strip().lower()
    year = _YEAR.search(text)
    if year:
        text = text[: year.start()]
    moved = _MOVED_ARTICLE.match(text.strip())
    if moved:
        text = f"{moved.group(2)} {moved.group(1)}"
    words = " ".join(re.findall(r"\w+", text))
    bare = " ".join(re.findall(r"\w+", re.sub(r"\([^)]*\)", " ", text)))  # "Seven (a.k.a. Se7en)": "seven"
    keys = [f"{words} {year.group(1)}", words] if year else [words]
    keys.append(bare)
    keys += [re.sub(r"^(the|a|an) ", "", k) for k in keys]  # "the jaws" is Jaws, "Matrix" The Matrix
    return tuple(k for k in dict.fromkeys(keys) if k)


@dataclass
class ItemSnapshot:
    """Every item's statistics as of one moment, as arrays aligned with `ItemTable.names`."""

    users: np.ndarray  # distinct people with a record of the item
    public: np.ndarray  # users >= min_users: the item may be named to anyone
    ratings: np.ndarray  # number of ratings
    rating_mean: np.ndarray  # NaN while fewer than min_users people had rated it
    community_users: np.ndarray | None = None  # distinct people of one community, when asked for
    mean_noise: np.ndarray | None = None  # the variance privacy noise adds to each rating mean (None: exact)
    users_noise: np.ndarray | None = None  # ...and to each count of people

    def mean_noise_sd(self, row: int) -> float | None:
        """The standard deviation privacy noise adds to one item's rating mean (None: exact figures)."""
        return None if self.mean_noise is None else float(np.sqrt(self.mean_noise[row]))

    def users_noise_sd(self, row: int) -> float | None:
        """The standard deviation privacy noise adds to one item's people (None: exact figures)."""
        return None if self.users_noise is None else float(np.sqrt(self.users_noise[row]))


@dataclass
class ItemTable:
    """Single items (a film, a dish, a place) that at least min_users people have records about: the
    finest-grained thing everyone shares. `user_offsets[i]:user_offsets[i+1]` slices item i's distinct users
    in `user_ts` (each one's first record of it, sorted) and `user_community` (their community, -1 if none);
    `offsets` slices its ratings in `rating_ts` (sorted) and `rating_cum` (running sums); `rater_offsets`
    slices `rater_ts`, each distinct rater's first rating time. `vectors` (unit) is the mean of the item's
    record vectors."""

    names: list[str]
    vectors: np.ndarray
    rating_ts: np.ndarray
    rating_cum: np.ndarray
    offsets: np.ndarray
    rater_ts: np.ndarray
    rater_offsets: np.ndarray
    user_ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    user_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    user_community: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    user_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # who, as an opaque number
    term_vocabulary: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    term_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # CSR by item: its terms...
    term_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # ...their tf-idf...
    term_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ...sliced per item
    release: Any = field(default=None, repr=False)  # the differentially private release (`release.Release`)
    rows: dict[str, int] = field(default_factory=dict, repr=False)
    _term_index: dict[str, int] = field(default_factory=dict, repr=False)
    _by_name: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.rows = {name: i for i, name in enumerate(self.names)}
        if len(self.user_offsets) != len(self.names) + 1:  # tables built before mentions counted: raters
            self.user_ts, self.user_offsets = self.rater_ts, self.rater_offsets
            self.user_community = np.full(len(self.rater_ts), -1, dtype=np.int32)
        if len(self.user_index) != len(self.user_ts):
            self.user_index = np.zeros(0, dtype=np.int32)

    def term_match(self, words: list[str]) -> np.ndarray:
        """For each item, the summed tf-idf weight of the given terms among its own (0 where none match)."""
        if len(self.term_offsets) != len(self.names) + 1 or not words:
            return np.zeros(len(self.names))
        if not self._term_index:
            self._term_index = {str(t): i for i, t in enumerate(self.term_vocabulary)}
        wanted = [self._term_index[w] for w in set(words) if w in self._term_index]
        if not wanted:
            return np.zeros(len(self.names))
        hit = np.isin(self.term_ids, wanted)
        item_of = np.repeat(np.arange(len(self.names)), np.diff(self.term_offsets))
        scores: np.ndarray = np.bincount(item_of[hit], weights=self.term_weights[hit], minlength=len(self.names))
        return scores

    @property
    def latest(self) -> float | None:
        """The newest dated record of any item: "now" for a memory asked without --at."""
        dated = self.user_ts[np.isfinite(self.user_ts) & (self.user_ts < 1e299)]
        return float(dated.max()) if len(dated) else None

    def recent_users(self, when: float | None, window: float) -> np.ndarray:
        """Distinct people whose first record of each item falls in the `window` seconds before `when`."""
        end = when if when is not None else self.latest
        if end is None:
            return np.zeros(len(self.names), dtype=np.int64)
        if self.release is not None:  # at the release's resolution: the last periods ended by then that span it
            released = self.release.last_periods("item_users", when, window)
            recent: np.ndarray = np.maximum(released, 0).round().astype(np.int64)
            return recent
        keep = (self.user_ts < end) & (self.user_ts >= end - window)
        cum = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        counts: np.ndarray = cum[self.user_offsets[1:]] - cum[self.user_offsets[:-1]]
        return counts

    def co_occurrence(self, rows: np.ndarray, when: float | None) -> np.ndarray:
        """For each item, the sum of its cosine similarities to the given items, over the people who have
        records of both before `when` (item-item collaborative filtering on global memory's mentions)."""
        if not len(self.user_index) or not len(rows):
            return np.zeros(len(self.names))
        keep = np.ones(len(self.user_ts), dtype=bool) if when is None else self.user_ts < when
        item_of = np.repeat(np.arange(len(self.names)), np.diff(self.user_offsets))[keep]
        people = self.user_index[keep]
        counts = np.bincount(item_of, minlength=len(self.names)).astype(np.float64)
        norm = np.sqrt(np.maximum(counts, 1.0))
        mine = np.zeros(len(self.names))
        mine[rows] = 1.0 / norm[rows]
        # (user, item) pairs are distinct, so X^T (X h) is two weighted counts, no sparse matrix needed
        per_person = np.bincount(people, weights=mine[item_of], minlength=int(self.user_index.max()) + 1)
        scores: np.ndarray = np.bincount(item_of, weights=per_person[people], minlength=len(self.names)) / norm
        return scores

    def snapshot(self, when: float | None, min_users: int, community: int | None = None) -> ItemSnapshot:
        """Every item's users, ratings and rating mean from records strictly before `when` (all if None),
        vectorized: one pass over the table's arrays, about a millisecond for 100k ratings."""

        def count(ts: np.ndarray, offsets: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
            keep = np.ones(len(ts), dtype=bool) if when is None else ts < when
            if mask is not None:
                keep &= mask
            cum = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
            counts: np.ndarray = cum[offsets[1:]] - cum[offsets[:-1]]
            return counts

        if self.release is not None:
            return self._released_snapshot(when, min_users)
        users = count(self.user_ts, self.user_offsets)
        ratings = count(self.rating_ts, self.offsets)
        raters = count(self.rater_ts, self.rater_offsets)
        last = np.maximum(self.offsets[:-1] + ratings - 1, 0)
        sums = np.where(ratings > 0, self.rating_cum[last] if len(self.rating_cum) else 0.0, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where((ratings > 0) & (raters >= min_users), sums / np.maximum(ratings, 1), np.nan)
        snap = ItemSnapshot(users=users, public=users >= min_users, ratings=ratings, rating_mean=mean)
        if community is not None:
            snap.community_users = count(self.user_ts, self.user_offsets, self.user_community == community)
        return snap

    def _released_snapshot(self, when: float | None, min_users: int) -> ItemSnapshot:
        """The snapshot from the differentially private release: noisy counts, thresholds on them. Users of
        one community are not released (None)."""
        rel = self.release
        users = np.maximum(rel.values("item_users", when), 0).round().astype(np.int64)
        ratings = np.maximum(rel.values("item_ratings", when), 0).round().astype(np.int64)
        low, high = self._scale()
        mean = rel.mean(rel.values("item_rating_sum", when), ratings, low, high)
        shown = (ratings >= min_users) & (users >= min_users)
        return ItemSnapshot(
            users=users,
            public=users >= min_users,
            ratings=ratings,
            rating_mean=np.where(shown, mean, np.nan),
            mean_noise=rel.mean_noise(mean, ratings, when),
            users_noise=np.broadcast_to(rel.noise_variance("item_users", when), users.shape),
        )

    def _scale(self) -> tuple[float, float]:
        rel = self.release
        return rel.low, rel.high

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in vars(self).items() if isinstance(v, np.ndarray) and not k.startswith("_")}

    def rating(self, row: int, when: float | None, min_users: int) -> tuple[float, int] | None:
        """(mean rating, ratings) of one item from ratings strictly before `when` (all if None); None while
        fewer than min_users people had rated it: a rarely rated item is as private as a small cluster."""
        if self.release is not None:
            rel = self.release
            n = max(0, round(rel.value("item_ratings", row, when)))
            if n < min_users or rel.value("item_users", row, when) < min_users:
                return None
            low, high = self._scale()
            total = rel.value("item_rating_sum", row, when)
            return float(self.release.mean(np.array([total]), np.array([n]), low, high)[0]), n
        lo, hi = int(self.offsets[row]), int(self.offsets[row + 1])
        n = hi - lo
        raters = int(self.rater_offsets[row + 1] - self.rater_offsets[row])
        if when is not None:
            n = int(np.searchsorted(self.rating_ts[lo:hi], when, side="left"))
            raters = _count_before(self.rater_ts, self.rater_offsets, row, when)
        if n == 0 or raters < min_users:
            return None
        return float(self.rating_cum[lo + n - 1]) / n, n

    def find(self, name: str, snapshot: ItemSnapshot | None = None) -> int | None:
        """The row of the item a person means by `name`: the same title up to case, punctuation, a trailing
        year and a moved article ("The Matrix", "Matrix, The (1999)"); with a year, that year's first. Of
        several items that fit, the one most people have (over all time in an exact build, whose figures
        protect nobody). Under privacy only items the view (`snapshot`) may name count, by their noisy people:
        exact all-time counts told, with certainty, which of two remakes one more person had, and named items
        no view had released yet (a helper playing attacker found it through a choice answer)."""
        self._index_names()
        if self.release is None:
            people, named = np.diff(self.user_offsets), None
        elif snapshot is None:
            raise ValueError("a private item table finds items as of a view: pass its snapshot")
        else:
            people, named = snapshot.users, snapshot.public
        for key in name_keys(name):
            rows = [r for r in self._by_name.get(key, []) if named is None or named[r]]
            if rows:
                return max(rows, key=lambda r: (int(people[r]), -r))
        return None

    def longest_title_in(self, text: str, snapshot: ItemSnapshot | None = None) -> int:
        """The length of the longest item title (a `name_keys` key) that `text` names as whole words, 0 for
        none: "Terminator 2 Judgment Day" names Terminator 2, not The Terminator. Under privacy only items the
        view may name (`snapshot.public`) count, as in `find`."""
        self._index_names()
        words = re.findall(r"\w+", text.lower())
        named = snapshot.public if self.release is not None and snapshot is not None else None
        longest = 0
        for start in range(len(words)):
            for end in range(start + 1, min(start + TITLE_WORDS, len(words)) + 1):
                key = " ".join(words[start:end])
                rows = self._by_name.get(key)
                if rows and len(key) > longest and (named is None or any(named[r] for r in rows)):
                    longest = len(key)
        return longest

    def _index_names(self) -> None:
        if not self._by_name:
            for row, item in enumerate(self.names):
                for key in dict.fromkeys(name_keys(item)):
                    self._by_name.setdefault(key, []).append(row)

    def nearest(self, vector: np.ndarray, n: int, floor: float) -> list[tuple[int, float]]:
        """The n items most similar to `vector` at or above `floor` (cosine), best first."""
        if n <= 0 or not len(self.names):
            return []
        scores = self.vectors @ vector.astype(self.vectors.dtype)
        top = np.argpartition(-scores, min(n, len(scores) - 1))[:n] if len(scores) > n else np.arange(len(scores))
        return [(int(i), float(scores[i])) for i in top[np.argsort(-scores[top])] if scores[i] >= floor]


@dataclass
class ItemNeighbours:
    """Each item's nearest items by who has them (cosine), as CSR arrays over the item table's rows:
    `indptr[i]:indptr[i+1]` slices item i's neighbours in `indices` and `similarity`, most similar first."""

    indptr: np.ndarray
    indices: np.ndarray
    similarity: np.ndarray
    _dense: dict[int, dict[int, float]] = field(default_factory=dict, repr=False)

    @property
    def items(self) -> int:
        return len(self.indptr) - 1

    def neighbours(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.indices[lo:hi], self.similarity[lo:hi]

    def similarity_to(self, row: int, others: np.ndarray) -> np.ndarray:
        """The similarity of item `row` to each of `others` (0 where it is not among its neighbours)."""
        if row not in self._dense:
            idx, sim = self.neighbours(row)
            self._dense[row] = dict(zip(idx.tolist(), sim.tolist(), strict=True))
        found = self._dense[row]
        return np.array([found.get(int(o), 0.0) for o in others], dtype=np.float64)

    def scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """For every item, the sum over `rows` (the user's items) of weight x similarity of that row to it."""
        out = np.zeros(self.items, dtype=np.float64)
        if not len(rows):
            return out
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        if not lengths.sum():
            return out
        take = np.repeat(ends - lengths.cumsum(), lengths) + np.arange(int(lengths.sum()))
        np.add.at(out, self.indices[take], self.similarity[take] * np.repeat(weights, lengths))
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"indptr": self.indptr, "indices": self.indices, "similarity": self.similarity}


@dataclass
class GlobalMemory:
    version: str
    built_at: float
    embedder: str
    options: dict[str, Any]
    records: int
    clusters: list[Cluster]
    users: dict[str, UserProfile]
    communities: list[Community]
    segments: list[float]  # segment boundaries (epoch s), len = segments + 1; empty when no timestamps
    rating_range: tuple[float, float] | None
    rating_step: float | None = None  # 0.5 for half stars; None in memories built before it was kept
    selection: dict[str, Any] = field(default_factory=dict)  # how k and C were chosen
    drift: dict[str, Any] = field(default_factory=dict)  # mean similarity to centroids, for --update
    as_of_time: float | None = None  # set on views made by as_of()
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    community_centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    timeline: Timeline | None = None
    items: ItemTable | None = None  # absent in memories built before it existed
    neighbours: ItemNeighbours | None = None  # the items' collaborative neighbours as built (`collaborative`)
    release: Any = None  # the differentially private release every view reads (`release`); None: exact
    data_at: float = 0.0  # when the snapshot it was built from was written (not saved: the ledger keeps it)

    @property
    def min_users(self) -> int:
        return int(self.options.get("min_users", 3))

    # ----- queries used by the mediator -----
    def nearest_clusters(
        self, vector: np.ndarray, n: int, *, include_private: bool = False
    ) -> list[tuple[Cluster, float]]:
        if n <= 0 or not len(self.clusters):
            return []
        scores = self.centroids @ vector
        out: list[tuple[Cluster, float]] = []
        for idx in np.argsort(-scores):
            cluster = self.clusters[int(idx)]
            if (cluster.private or cluster.size == 0) and not include_private:
                continue
            out.append((cluster, float(scores[idx])))
            if len(out) == n:
                break
        return out

    def item_rating(self, name: str) -> tuple[float, int] | None:
        """The population's (mean rating, ratings) of one item by name, as of this view's time."""
        if self.items is None or (row := self.items.rows.get(name)) is None:
            return None
        return self.items.rating(row, self.as_of_time, self.min_users)

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """The nearest cluster of each vector."""
        if len(vectors) == 0:
            return np.zeros(0, dtype=np.int64)
        nearest: np.ndarray = np.argmax(vectors @ self.centroids.T, axis=1)
        return nearest

    def community_for(self, distribution: dict[int, float]) -> Community | None:
        """The community whose mean cluster distribution is nearest (cosine) to the given one."""
        if not self.communities or not distribution:
            return None
        vec = np.zeros(len(self.clusters), dtype=np.float32)
        for cid, share in distribution.items():
            vec[cid] = share
        vec /= np.linalg.norm(vec) or 1.0
        norms = np.maximum(np.linalg.norm(self.community_centroids, axis=1, keepdims=True), 1e-9)
        return self.communities[int(np.argmax((self.community_centroids / norms) @ vec))]

    def profile_from_vectors(
        self, user: str, vectors: np.ndarray, ratings: Sequence[float] = ()
    ) -> UserProfile | None:
        """A profile computed at ask time (for `--at`, or a user ingested after the build); `ratings`, the
        user's own, give its rating_mean as a build's profile has it."""
        if len(vectors) == 0 or not len(self.clusters):
            return None
        counts = np.bincount(self.assign(vectors), minlength=len(self.clusters)).astype(np.float64)
        sizes = np.array([c.size for c in self.clusters], dtype=np.float64)
        profile = profile_from_counts(user, counts, sizes, self.community_for)
        profile.rating_mean = round(sum(ratings) / len(ratings), 3) if ratings else None
        return profile

    # ----- time -----
    def as_of(self, when: float) -> GlobalMemory:
        """A view whose statistics count only records strictly before `when` (epoch s).

        Centroids and keywords (what each topic is) stay; sizes, users, items, ratings, trends and privacy are
        recomputed from the timeline. Undated records are never counted in a view.
        """
        if self.timeline is None:
            raise StoreError("This global memory has no timeline.", "Run `logo build-global` again.")
        if self.release is not None:
            clusters = self.release.clusters(self, when)
            records = sum(c.size for c in clusters)
            return replace(self, clusters=clusters, as_of_time=when, records=records, neighbours=None)
        tl = self.timeline
        started = [edge for edge in self.segments[:-1] if edge < when]  # periods begun by `when`
        edges = np.minimum(np.asarray([*started, self.segments[len(started)]]), when) if started else None
        per_segment: list[np.ndarray] = []
        clusters = []
        for c in self.clusters:
            lo, hi = int(tl.record_offsets[c.id]), int(tl.record_offsets[c.id + 1])
            times = tl.record_ts[lo:hi]
            n = int(np.searchsorted(times, when, side="left"))
            users = _count_before(tl.user_first_ts, tl.user_offsets, c.id, when)
            raters = _count_before(tl.rater_first_ts, tl.rater_offsets, c.id, when)
            rated = int(tl.rated_cum[lo + n - 1]) if n else 0
            rating_mean = None
            if rated and raters >= self.min_users:
                rating_mean = round(float(tl.rating_cum[lo + n - 1]) / rated, 3)
            items = [
                (item, int(np.searchsorted(np.asarray(first), when, side="left")))
                for item, first in tl.item_first_ts.get(c.id, {}).items()
            ]
            top = sorted(((i, u) for i, u in items if u >= self.min_users), key=lambda kv: (-kv[1], kv[0]))[:5]
            if edges is not None:
                per_segment.append(np.diff(np.searchsorted(times, edges, side="left")))
            clusters.append(
                replace(
                    c,
                    size=n,
                    users=users,
                    top_items=top,
                    rating_mean=rating_mean,
                    rating_count=rated if rating_mean is not None else 0,
                    labels={},
                    examples=[],  # texts carry no time here: a view as of a moment shows none
                    trend=[],
                    private=users < self.min_users,
                )
            )
        if per_segment:
            totals = np.sum(per_segment, axis=0)
            for cluster, mine in zip(clusters, per_segment, strict=True):
                cluster.trend = [round(float(m / t), 4) if t else 0.0 for m, t in zip(mine, totals, strict=True)]
        return replace(self, clusters=clusters, as_of_time=when, records=sum(c.size for c in clusters), neighbours=None)

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "records": self.records,
            "users": len(self.users),
            "clusters": len(self.clusters),
            "private_clusters": sum(c.private for c in self.clusters),
            "communities": len(self.communities),
            "embedder": self.embedder,
            "selection": self.selection,
            "drift": self.drift,
            "privacy": self.privacy(),
        }

    def privacy(self, brief: bool = False) -> dict[str, Any]:
        """What protects the population statistics this memory shows: its release's budget (and ledger)."""
        if self.release is None:
            return dict(EXACT_SUMMARY)
        summary: dict[str, Any] = self.release.summary()
        if brief:
            summary.pop("ledger")
        return summary


def _count_before(first_ts: np.ndarray, offsets: np.ndarray, cid: int, when: float) -> int:
    lo, hi = int(offsets[cid]), int(offsets[cid + 1])
    return int(np.searchsorted(first_ts[lo:hi], when, side="left"))


def entropy(shares: np.ndarray, k: int) -> float:
    """Normalized entropy: 0 when all mass is in one cluster, 1 when spread evenly over all k."""
    nz = shares[shares > 0]
    if k <= 1 or len(nz) == 0:
        return 0.0
    return max(0.0, float(-(nz * np.log(nz)).sum() / math.log(k)))


DIVERSITY_DRAWS = 64  # random histories that make the expected entropy of one history size
_EXPECTED: dict[tuple[int, bytes], float] = {}


def expected_entropy(n: int, population: np.ndarray) -> float:
    """The mean entropy (nats) of the cluster counts of n records drawn at random from the population's
    clusters (its shares), from DIVERSITY_DRAWS seeded draws: what a history of n records has by chance."""
    p = population / max(float(population.sum()), 1e-12)
    key = (n, p.astype(np.float32).tobytes())
    if key not in _EXPECTED:
        draws = np.random.default_rng(n).multinomial(n, p, size=DIVERSITY_DRAWS).astype(np.float64) / max(n, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(draws > 0, np.log(draws), 0.0)
        _EXPECTED[key] = float(-(draws * logs).sum(axis=1).mean())
    return _EXPECTED[key]


def relative_diversity(counts: np.ndarray, population: np.ndarray) -> float:
    """A user's diversity: the entropy of their records over the clusters against the entropy expected of as
    many records drawn at random from everyone's (`expected_entropy`), at most 1. 1: as varied as chance makes
    a history of that length; 0: one cluster. Unlike entropy over log(k), it means the same whatever the
    number of clusters and the history's length, so one threshold (`--biased-max-diversity`) serves every
    data set."""
    n = int(counts.sum())
    expected = expected_entropy(n, population) if n > 1 else 0.0
    if expected <= 1e-9:
        return 0.0
    shares = counts[counts > 0] / n
    return max(0.0, min(1.0, float(-(shares * np.log(shares)).sum()) / expected))  # max: no "-0.0"


def dominant(distribution: dict[int, float], mass: float = 0.8, most: int = 3) -> list[int]:
    """The largest clusters that together hold `mass` of the user's records (at most `most`)."""
    out, total = [], 0.0
    for cid, share in sorted(distribution.items(), key=lambda kv: -kv[1]):
        out.append(cid)
        total += share
        if total >= mass or len(out) == most:
            break
    return out


def profile_from_counts(
    user: str, counts: np.ndarray, population: np.ndarray, community_for: Any = None
) -> UserProfile:
    """A user's profile from their record counts per cluster; `population` is everyone's (for diversity)."""
    shares = counts / max(counts.sum(), 1)
    dist = {int(c): round(float(s), 4) for c, s in enumerate(shares) if s > 0}
    history = int(counts.sum())
    community = community_for(dist) if community_for and history >= MIN_HISTORY_FOR_COMMUNITY else None
    return UserProfile(
        user=user,
        history=history,
        distribution=dist,
        diversity=round(relative_diversity(counts, population), 4),
        dominant=dominant(dist),
        community=community.id if community else None,
    )
