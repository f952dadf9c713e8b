"""Plain predictors without a language model, as references for `logo eval`: they read the same store as logo,
as of the same question time, and never the question's text (except a genre question's genre, which they are
told, as a person filtering a catalogue by genre would be).

Recommenders (list questions):
- popularity: the items most people have records of before the question's time;
- item-kNN: items scored by their cosine similarity to the user's items over who has what (implicit's
  item-item model, the KNN_NEIGHBOURS nearest of each item kept), summed over the user's items weighted by
  how much they liked each; the list is filled by popularity when the neighbours name too few.
Choosers (choice questions): the option with the highest mean rating (item mean), the most people
(popularity) or the highest item-kNN score; and chance, 1 / options.
Rating (number questions): user+item bias, mu + b_u + b_i with each bias shrunk toward 0 by BIAS_ITEM_PRIOR and
BIAS_USER_PRIOR pseudo-ratings, fitted by alternating means (the standard "baseline predictor").
The constants were chosen on the selection half of the MovieLens users, like logo's.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .evidence import liked_weights
from .global_memory.model import name_keys
from .local_memory.store import Store
from .records import Record

RECOMMENDERS = ("popularity", "item-knn")
CHOOSERS = ("item-mean", "popularity", "item-knn", "chance")
RATERS = ("user-item-bias",)
REFERENCES = (*RECOMMENDERS, "item-mean", "chance", *RATERS)
KNN_NEIGHBOURS = 100
BIAS_ITEM_PRIOR = 10.0
BIAS_USER_PRIOR = 5.0
BIAS_ROUNDS = 3


@dataclass
class Interactions:
    """Every (user, item) record of the store with its time and rating (NaN: none), as integer codes, and each
    item's genres where records carry them (`meta.genres`, as MovieLens records do)."""

    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    ratings: np.ndarray
    user_index: dict[str, int]
    item_names: list[str]
    genres: list[frozenset[str]] = field(default_factory=list)
    _by_name: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_store(cls, store: Store) -> Interactions:
        users: list[int] = []
        items: list[int] = []
        ts: list[float] = []
        ratings: list[float] = []
        user_index: dict[str, int] = {}
        item_index: dict[str, int] = {}
        genres: dict[int, frozenset[str]] = {}
        for page in store.scan():
            for meta in page.metadatas:
                item = meta.get("item")
                if not item:
                    continue
                code = item_index.setdefault(item, len(item_index))
                users.append(user_index.setdefault(meta["user"], len(user_index)))
                items.append(code)
                ts.append(float(meta.get("ts", np.inf)))
                rating = meta.get("rating")
                ratings.append(np.nan if rating is None else float(rating))
                extra = meta.get("meta") or {}
                if code not in genres and isinstance(extra, dict) and isinstance(extra.get("genres"), str):
                    genres[code] = frozenset(extra["genres"].split("|"))
        return cls(
            np.asarray(users, dtype=np.int64),
            np.asarray(items, dtype=np.int64),
            np.asarray(ts, dtype=np.float64),
            np.asarray(ratings, dtype=np.float64),
            user_index,
            list(item_index),
            [genres.get(i, frozenset()) for i in range(len(item_index))],
        )

    def before(self, when: float | None) -> np.ndarray:
        return np.ones(len(self.ts), dtype=bool) if when is None else self.ts < when

    def history(self, user: str, keep: np.ndarray) -> np.ndarray:
        """The distinct items of one user among the kept interactions."""
        code = self.user_index.get(user)
        if code is None:
            return np.zeros(0, dtype=np.int64)
        return np.unique(self.items[keep & (self.users == code)])

    def find(self, name: str) -> int | None:
        """The item a person means by `name` (the matching `ask` uses: `ItemTable.find`), most interactions first."""
        if not self._by_name:
            for code, item in enumerate(self.item_names):
                for key in dict.fromkeys(name_keys(item)):
                    self._by_name.setdefault(key, []).append(code)
        counts = np.bincount(self.items, minlength=len(self.item_names))
        for key in name_keys(name):
            found = self._by_name.get(key)
            if found:
                return max(found, key=lambda c: (int(counts[c]), -c))
        return None

    def of_genre(self, genre: str | None) -> np.ndarray:
        """Which items are of the genre (all when None)."""
        if genre is None:
            return np.ones(len(self.item_names), dtype=bool)
        return np.array([genre in g for g in self.genres], dtype=bool)


def _people(data: Interactions, keep: np.ndarray) -> np.ndarray:
    pairs = np.unique(data.users[keep] * len(data.item_names) + data.items[keep])
    counts: np.ndarray = np.bincount(pairs % len(data.item_names), minlength=len(data.item_names))
    return counts


def _top(scores: np.ndarray, exclude: np.ndarray, allowed: np.ndarray, names: list[str], count: int) -> list[str]:
    scores = scores.astype(np.float64).copy()
    scores[exclude] = -np.inf
    scores[~allowed] = -np.inf
    order = np.argsort(-scores, kind="stable")[:count]
    return [names[i] for i in order if np.isfinite(scores[i]) and scores[i] > 0]


def popularity(
    data: Interactions, user: str, when: float | None, count: int, min_users: int = 1, genre: str | None = None
) -> list[str]:
    keep = data.before(when)
    people = _people(data, keep).astype(np.float64)
    allowed = (people >= min_users) & data.of_genre(genre)
    return _top(people, data.history(user, keep), allowed, data.item_names, count)


def knn_scores(data: Interactions, user: str, when: float | None) -> np.ndarray:
    """Every item's item-kNN score for the user (see the module docstring)."""
    from implicit.nearest_neighbours import CosineRecommender
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    keep = data.before(when)
    code = data.user_index.get(user)
    mine = keep & (data.users == code) if code is not None else np.zeros(len(keep), dtype=bool)
    if not mine.any():
        return np.zeros(len(data.item_names))
    who_has = sparse.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (data.users[keep], data.items[keep])),
        shape=(len(data.user_index), len(data.item_names)),
    )
    who_has.data[:] = 1.0  # binary: repeats count once
    model = CosineRecommender(K=KNN_NEIGHBOURS + 1)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="implicit")
        model.fit(who_has, show_progress=False)
    similarity = model.similarity.tolil()
    similarity.setdiag(0)
    records = [
        Record(user, "", str(i), item=data.item_names[i], rating=None if np.isnan(r) else float(r))
        for i, r in zip(data.items[mine], data.ratings[mine], strict=True)
    ]
    weights = np.zeros(len(data.item_names))
    np.add.at(weights, data.items[mine], liked_weights(records))
    scores: np.ndarray = (sparse.csr_matrix(weights[None, :]) @ similarity.tocsr()).toarray().ravel()
    return scores


def item_knn(
    data: Interactions, user: str, when: float | None, count: int, min_users: int = 1, genre: str | None = None
) -> list[str]:
    keep = data.before(when)
    mine = data.history(user, keep)
    people = _people(data, keep).astype(np.float64)
    allowed = (people >= min_users) & data.of_genre(genre)
    named = _top(knn_scores(data, user, when), mine, allowed, data.item_names, count) if len(mine) else []
    if len(named) < count:  # too few neighbours: the rest by popularity
        extra = [n for n in popularity(data, user, when, 2 * count, min_users, genre) if n not in named]
        named += extra[: count - len(named)]
    return named


# ------------------------------------------------------------------------------------------ choosers


def choose(data: Interactions, method: str, user: str, when: float | None, options: Sequence[str]) -> str:
    """The option a plain chooser picks (ties: the first option)."""
    keep = data.before(when)
    codes = [data.find(o) for o in options]
    if method == "popularity":
        people = _people(data, keep)
        values = [float(people[c]) if c is not None else -1.0 for c in codes]
    elif method == "item-mean":
        rated = keep & ~np.isnan(data.ratings)
        sums = np.bincount(data.items[rated], weights=data.ratings[rated], minlength=len(data.item_names))
        counts = np.bincount(data.items[rated], minlength=len(data.item_names))
        overall = float(data.ratings[rated].mean()) if rated.any() else 0.0
        values = [float(sums[c] / counts[c]) if c is not None and counts[c] else overall for c in codes]
    elif method == "item-knn":
        scores = knn_scores(data, user, when)
        values = [float(scores[c]) if c is not None else -1.0 for c in codes]
    else:
        raise ValueError(f"unknown chooser {method!r}")
    return options[int(np.argmax(values))]


# ---------------------------------------------------------------------------------------------- rating


def bias_rating(data: Interactions, user: str, item: str | None, when: float | None) -> float | None:
    """The user+item bias prediction of the user's rating of the item (see the module docstring)."""
    rated = data.before(when) & ~np.isnan(data.ratings)
    if not rated.any():
        return None
    users, items, ratings = data.users[rated], data.items[rated], data.ratings[rated]
    mu = float(ratings.mean())
    n_users, n_items = len(data.user_index), len(data.item_names)
    per_item = np.bincount(items, minlength=n_items)
    per_user = np.bincount(users, minlength=n_users)
    b_user = np.zeros(n_users)
    b_item = np.zeros(n_items)
    for _ in range(BIAS_ROUNDS):
        b_item = np.bincount(items, weights=ratings - mu - b_user[users], minlength=n_items) / (
            per_item + BIAS_ITEM_PRIOR
        )
        b_user = np.bincount(users, weights=ratings - mu - b_item[items], minlength=n_users) / (
            per_user + BIAS_USER_PRIOR
        )
    code = data.user_index.get(user)
    found = data.find(item) if item else None
    value = mu + (b_user[code] if code is not None else 0.0) + (b_item[found] if found is not None else 0.0)
    return float(value)
