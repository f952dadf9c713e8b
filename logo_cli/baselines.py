"""Plain recommenders without a language model, as references for `logo eval`: they read the same store as
logo, as of the same question time, and never the question's text.

- popularity: the items most people have records of, before the question's time;
- item-kNN: items scored by their co-occurrence with the user's own items (cosine between items' user
  vectors, summed over every item in the user's history: all neighbours, binary interactions).

Both leave out the user's own items, like logo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .local_memory.store import Store

REFERENCES = ("popularity", "item-knn")


@dataclass
class Interactions:
    """Every (user, item) record of the store with its time, as integer codes."""

    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    user_index: dict[str, int]
    item_names: list[str]

    @classmethod
    def from_store(cls, store: Store) -> Interactions:
        users: list[int] = []
        items: list[int] = []
        ts: list[float] = []
        user_index: dict[str, int] = {}
        item_index: dict[str, int] = {}
        for page in store.scan():
            for meta in page.metadatas:
                item = meta.get("item")
                if not item:
                    continue
                users.append(user_index.setdefault(meta["user"], len(user_index)))
                items.append(item_index.setdefault(item, len(item_index)))
                ts.append(float(meta.get("ts", np.inf)))
        return cls(
            np.asarray(users, dtype=np.int64),
            np.asarray(items, dtype=np.int64),
            np.asarray(ts, dtype=np.float64),
            user_index,
            list(item_index),
        )

    def before(self, when: float | None) -> np.ndarray:
        return np.ones(len(self.ts), dtype=bool) if when is None else self.ts < when

    def history(self, user: str, keep: np.ndarray) -> np.ndarray:
        """The distinct items of one user among the kept interactions."""
        code = self.user_index.get(user)
        if code is None:
            return np.zeros(0, dtype=np.int64)
        return np.unique(self.items[keep & (self.users == code)])


def _top(scores: np.ndarray, exclude: np.ndarray, names: list[str], count: int) -> list[str]:
    scores = scores.astype(np.float64).copy()
    scores[exclude] = -np.inf
    order = np.argsort(-scores, kind="stable")[:count]
    return [names[i] for i in order if np.isfinite(scores[i]) and scores[i] > 0]


def popularity(data: Interactions, user: str, when: float | None, count: int, min_users: int = 1) -> list[str]:
    keep = data.before(when)
    pairs = np.unique(data.users[keep] * len(data.item_names) + data.items[keep])
    people = np.bincount(pairs % len(data.item_names), minlength=len(data.item_names))
    people[people < min_users] = 0
    return _top(people, data.history(user, keep), data.item_names, count)


def item_knn(data: Interactions, user: str, when: float | None, count: int, min_users: int = 1) -> list[str]:
    from scipy import sparse

    keep = data.before(when)
    mine = data.history(user, keep)
    if not len(mine):
        return []
    n_users, n_items = len(data.user_index), len(data.item_names)
    matrix = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (data.users[keep], data.items[keep])), shape=(n_users, n_items)
    )
    matrix.data[:] = 1.0  # binary: duplicates summed by the constructor count once
    people = np.asarray(matrix.sum(axis=0)).ravel()
    norm = np.sqrt(np.maximum(people, 1.0))
    history = np.zeros(n_items)
    history[mine] = 1.0 / norm[mine]
    scores = (matrix.T @ (matrix @ history)) / norm  # sum over the user's items of cosine(item, theirs)
    scores[people < min_users] = 0.0
    return _top(np.asarray(scores).ravel(), mine, data.item_names, count)
