"""Collaborative filtering over global memory's item table: for each shared item, the shared items the same
people have, fitted with `implicit`'s item-item cosine model (a well-kept library) on who has which item.

The neighbours are fitted at build time and saved with the version (`neighbours.npz`). A view of memory as
of an earlier time (`GlobalMemory.as_of`, `ask --at`, `eval`) refits them from the mentions before that time
(a few hundred milliseconds on MovieLens), so no answer uses who had what afterwards; under privacy, before
the end of the last period ended by then, as every released figure. Refits are cached per (version, time).

Privacy: a pair of items is kept only when at least `min_users` people have both, the rule that keeps a small
cluster's items from other users: "the one person who has A also has B" is never a neighbour. With cosine on
who-has-what, the number of people who have both is similarity x sqrt(people(A) x people(B)), so the rule
needs no second pass.

Scoring (pure numpy, no implicit or scipy import on the answer path): an item's collaborative score for a user
is the sum, over the user's items, of each one's similarity to it, weighted by how much the user liked it:
implicit's item-item `recommend`, computed here from the saved arrays.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import numpy as np

from .model import GlobalMemory, ItemNeighbours, ItemTable

NEIGHBOURS = 100  # kept per item: implicit's K
_REFITS: OrderedDict[tuple[str, float], ItemNeighbours] = OrderedDict()  # (version, as of) -> neighbours
_REFITS_KEPT = 16


def fit_neighbours(table: ItemTable, when: float | None, min_users: int, k: int = NEIGHBOURS) -> ItemNeighbours:
    """Item-item cosine over who has each item (one mention per person and item), from mentions strictly
    before `when` (all if None), keeping each item's `k` nearest items that at least `min_users` people share."""
    n = len(table.names)
    if not len(table.user_index) or n == 0:
        return _empty(n)
    from implicit.nearest_neighbours import CosineRecommender
    from scipy import sparse
    from threadpoolctl import threadpool_limits

    keep = np.ones(len(table.user_ts), dtype=bool) if when is None else table.user_ts < when
    item_of = np.repeat(np.arange(n), np.diff(table.user_offsets))[keep]
    people = table.user_index[keep].astype(np.int64)
    if not len(people):
        return _empty(n)
    who_has = sparse.csr_matrix(
        (np.ones(len(people), dtype=np.float32), (people, item_of)), shape=(int(people.max()) + 1, n)
    )
    model = CosineRecommender(K=k + 1)  # +1: an item is its own nearest neighbour
    with threadpool_limits(1, "blas"), warnings.catch_warnings():  # implicit's advice: its threads, not BLAS's
        warnings.filterwarnings("ignore", module="implicit")  # its normalize hands its own fit a COO matrix
        model.fit(who_has, show_progress=False)
    similarity = model.similarity.tocoo()
    owners = np.bincount(item_of, minlength=n).astype(np.float64)
    shared = similarity.data * np.sqrt(owners[similarity.row] * owners[similarity.col])
    keep_pair = (similarity.row != similarity.col) & (np.rint(shared) >= min_users) & (similarity.data > 0)
    rows, cols, sims = similarity.row[keep_pair], similarity.col[keep_pair], similarity.data[keep_pair]
    order = np.lexsort((-sims, rows))  # by item, most similar first
    rows, cols, sims = rows[order], cols[order], sims[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
    return ItemNeighbours(indptr, cols.astype(np.int32), sims.astype(np.float32))


def _empty(n: int) -> ItemNeighbours:
    return ItemNeighbours(np.zeros(n + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))


def neighbours_of(memory: GlobalMemory) -> ItemNeighbours | None:
    """The item neighbours behind a memory or a view of it: the build's, or refitted as of the view's time
    (cached), or fitted on first use for a memory saved without them. None without an item table."""
    if memory.items is None:
        return None
    if memory.as_of_time is None:
        if memory.neighbours is None:
            memory.neighbours = fit_neighbours(memory.items, None, memory.min_users)
        return memory.neighbours
    when = float(memory.as_of_time)
    if memory.release is not None:
        # under privacy a view sees only the periods ended by its time, and so do the neighbours: refitted to
        # the second, they told anyone when another person added an item (ask --at one second apart)
        when = math.floor(when / memory.release.width) * memory.release.width
    key = (memory.version, when)
    found = _REFITS.get(key)
    if found is None:
        found = fit_neighbours(memory.items, when, memory.min_users)
        _REFITS[key] = found
        while len(_REFITS) > _REFITS_KEPT:
            _REFITS.popitem(last=False)
    else:
        _REFITS.move_to_end(key)
    return found
