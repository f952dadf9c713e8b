"""What memory knows about one user and the items a question is about: the one place where rating, choice
and recommend answers read global memory's items, so the three cannot drift apart. Pure: no I/O.

Built once per question from the memory the question may read (global memory as of the question's time,
`None` in the modes that read no other person) and the user's history as of then. For an item of global
memory's item table it gives:

    population_i  the item's mean rating shrunk toward its cluster's: (n_i mean_i + ITEM_PRIOR cluster_c) /
                  (n_i + ITEM_PRIOR); an item rated by fewer than min_users people counts with n_i = 0. Under
                  privacy the mean's weight also falls with the variance v_i its noise adds:
                  1 / (1 + ITEM_PRIOR / n_i + ITEM_PRIOR v_i)
    offset_u      how this user rates compared with everyone: the sum over the user's rated records of
                  (rating - that record's population rating) / (records + OFFSET_PRIOR)
    neighbours_ui the user's own ratings of the items the same people have (global memory's collaborative
                  neighbours), as residuals: sum_j s_ij (r_uj - population_j - offset_u) / (sum_j s_ij +
                  NEIGHBOUR_PRIOR), s_ij the cosine between who has i and who has j
    estimate_ui   population_i + offset_u + neighbours_ui, within the data's rating range: what a rating
                  answer anchors on, and a choice weighs
    together_ui   the sum over the user's liked items of their similarity to it (item-item collaborative
                  filtering, `global_memory.collaborative`)
    content_ui    its similarity to the user's liked records (mean of the LIKED_TOP best, each weighted by how
                  much the user liked it), and which record that is
    popular_i, recent_i, community_i: log(1 + people with a record of it), over everyone, over the
                  RECENT_DAYS before the question, and among the user's community, each over its maximum

Liked: a rated record by its rating against the user's own mean (0..1); an unrated record UNRATED_LIKE, or 0
when it states a dislike (`preferences`). The constants were chosen on half of the MovieLens users (see
docs/evaluation.md), on the estimate alone.

`--memory` modes: `local` reads no other person (no population, offset, neighbours or together: the estimate
is the user's own ratings of their most similar records); `global` reads no user history (population only);
`none` reads neither.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .global_memory import GlobalMemory, ItemNeighbours, ItemSnapshot
from .modes import Memory
from .preferences import clauses, polarity, states_preference
from .records import Record

ITEM_PRIOR = 5.0  # ratings it takes before an item's own mean counts half against its cluster's mean
OFFSET_PRIOR = 10.0  # rated records it takes before a user's offset from the population counts half
NEIGHBOUR_PRIOR = 1.0  # similarity mass it takes before the neighbours' residuals count half
UNRATED_LIKE = 0.5  # how much an unrated record says the user liked its item
LIKED_TOP = 3
RECENT_DAYS = 180.0
OWN_K = 8  # `local`: the user's most similar rated records that make their own estimate
STATED_RECORDS = 8  # the user's preference statements most like the question that a choice reads
QUOTED_MEAN_NOISE = 0.5  # stars: answers quote an item's mean only while its privacy noise's sd is below this
QUOTED_PEOPLE_NOISE = 0.25  # ...and its people only while their noise's sd is below this share of the count


def quoted_mean(mean: float | None, noise_sd: float | None) -> float | None:
    """An item's mean as a reason an answer gives (recommend, choice and rating reasons alike): None while it
    is private (None or NaN) or while privacy noise could move it by more than QUOTED_MEAN_NOISE (in the sample
    histories, Barbie, rated 3.4 by four people, read 1.5 from 7 noisy ratings); the answer quotes its people."""
    if mean is None or math.isnan(mean) or (noise_sd is not None and noise_sd > QUOTED_MEAN_NOISE):
        return None
    return mean


UNCOUNTED_PEOPLE = "in other people's histories"


def people_reason(people: int, noise_sd: float | None) -> str | None:
    """`9 people have it in their history`, as a reason, while privacy noise could not move the number by more
    than QUOTED_PEOPLE_NOISE of itself; else None, and an answer says UNCOUNTED_PEOPLE where it has no other
    reason (in the sample histories every item's people carry a noise of about 9: Mexico City, which 4 people
    have, read "36 people"). The count is judged less two deviations: against the noisy number itself, the
    items that noise inflated most would be the ones quoted."""
    if noise_sd is not None and noise_sd > QUOTED_PEOPLE_NOISE * (people - 2 * noise_sd):
        return None
    return f"{people} people have it in their history"


@dataclass
class ItemEvidence:
    """What memory knows about this user and one item (JSON: `evidence.items` of rating and choice answers)."""

    item: str
    row: int
    population: float | None
    rating_mean: float | None  # the item's own public mean (None while fewer than min_users people rated it)
    ratings: int
    raters: int  # people with a record of it, as of the question's time
    offset: float | None
    neighbours: float | None
    estimate: float | None
    together: float = 0.0
    content: float = 0.0
    because: str | None = None  # the user's liked record most like it
    because_rating: float | None = None
    weight: float = 1.0  # share among the items a question may name (rating answers)
    similarity: float | None = None  # to the question (rating answers)
    rating_mean_noise: float | None = None  # the standard deviation privacy noise adds to it (None: exact)
    raters_noise: float | None = None  # ...and to `raters`

    @property
    def quoted_mean(self) -> float | None:
        return quoted_mean(self.rating_mean, self.rating_mean_noise)

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None, digits: int = 3) -> float | None:
            return None if x is None else round(float(x), digits)

        return {
            "item": self.item,
            "rating_mean": r(self.rating_mean),
            "ratings": self.ratings,
            "raters": self.raters,
            "population": r(self.population),
            "offset": r(self.offset),
            "neighbours": r(self.neighbours),
            "estimate": r(self.estimate),
            "together": r(self.together),
            "content": r(self.content),
            "because": self.because,
            "because_rating": self.because_rating,
            "weight": r(self.weight, 4),
            "similarity": r(self.similarity, 4),
            "rating_mean_noise": r(self.rating_mean_noise),
            "raters_noise": r(self.raters_noise, 1),
        }


def liked_weights(history: Sequence[Record]) -> np.ndarray:
    """How much the user liked each of their records: rating against their own mean, as 0..1; unrated
    records UNRATED_LIKE, or 0 when they state a dislike; records rated well below their mean count nothing."""
    ratings = np.array([np.nan if r.rating is None else float(r.rating) for r in history], dtype=np.float64)
    weights = np.array([0.0 if states_preference(r.text) and polarity(r.text) < 0 else UNRATED_LIKE for r in history])
    rated = ~np.isnan(ratings)
    if rated.any():
        mean = float(ratings[rated].mean())
        spread = max(float(np.nanmax(ratings) - np.nanmin(ratings)), 1.0)
        weights[rated] = np.clip(0.5 + (ratings[rated] - mean) / spread, 0.0, 1.0)
    return weights


@dataclass
class UserEvidence:
    """What memory knows about one user, as of one question: see the module docstring."""

    memory: GlobalMemory | None  # the view the question may read; None: no population (`local`, `none`)
    catalog: GlobalMemory | None  # the items that exist (every mode names items only from here)
    history: Sequence[Record]
    vectors: np.ndarray  # aligned with `history`
    mode: Memory
    community: int | None = None
    _offset: tuple[float, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.mode = Memory(self.mode)

    # ----- what the whole population says
    @cached_property
    def snapshot(self) -> ItemSnapshot | None:
        """Every item's statistics as of the question (the catalog's: every mode may name its items)."""
        source = self.catalog
        if source is None or source.items is None:
            return None
        return source.items.snapshot(source.as_of_time, source.min_users)

    @cached_property
    def _overall_mean(self) -> float | None:
        memory = self.memory
        if memory is None:
            return None
        means = [(c.rating_mean, c.rating_count) for c in memory.clusters if c.rating_mean is not None]
        total = sum(n for _, n in means)
        return float(sum(m * n for m, n in means) / total) if total else None

    def cluster_prior(self, clusters: np.ndarray) -> np.ndarray:
        """The rating each cluster's items shrink toward: its released mean, or everyone's where it has none or is
        private (NaN where memory knows no rating at all)."""
        assert self.memory is not None
        fallback = np.nan if self._overall_mean is None else self._overall_mean
        table = np.array(
            [fallback if c.rating_mean is None or c.private else c.rating_mean for c in self.memory.clusters]
        )
        out: np.ndarray = table[clusters] if len(table) else np.full(len(clusters), fallback)
        return out

    def population(self, rows: np.ndarray) -> np.ndarray:
        """population_i of each item row (NaN where memory knows no rating near it)."""
        memory, snap = self.memory, self.snapshot
        if memory is None or snap is None or memory.items is None or not len(rows):
            return np.full(len(rows), np.nan)
        prior = self.cluster_prior(memory.assign(memory.items.vectors[rows]))
        n = np.where(np.isnan(snap.rating_mean[rows]), 0, snap.ratings[rows]).astype(np.float64)
        mean = np.nan_to_num(snap.rating_mean[rows])
        # the weight of the item's own mean, n / (n + ITEM_PRIOR) when exact: 1 / (1 + ITEM_PRIOR/n + noise),
        # where privacy noise of variance v counts as ITEM_PRIOR * v (ratings of variance about 1 star^2)
        noise = np.zeros(len(rows)) if snap.mean_noise is None else snap.mean_noise[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(n > 0, 1.0 / (1.0 + ITEM_PRIOR / np.maximum(n, 1e-9) + ITEM_PRIOR * noise), 0.0)
        shrunk = own * mean + (1.0 - own) * np.nan_to_num(prior)
        out: np.ndarray = np.where(np.isnan(prior), np.where(n > 0, mean, np.nan), shrunk)
        return out

    # ----- the user against the population
    @cached_property
    def _rated(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(history index, item row or -1, rating, population rating) of each rated record with a baseline."""
        memory = self.memory
        idx = np.array([i for i, r in enumerate(self.history) if r.rating is not None], dtype=np.int64)
        if memory is None or not len(idx):
            empty = np.zeros(0)
            return idx[:0], idx[:0], empty, empty
        table = memory.items
        names = table.rows if table is not None else {}
        rows = np.array([names.get(self.history[i].item or "", -1) for i in idx], dtype=np.int64)
        ratings = np.array([float(self.history[i].rating or 0.0) for i in idx])
        base = np.full(len(idx), np.nan)
        known = rows >= 0
        if known.any():
            base[known] = self.population(rows[known])
        missing = np.isnan(base)
        if missing.any():  # no item statistics: the record's cluster says how people rate such things
            base[missing] = self.cluster_prior(memory.assign(self.vectors[idx[missing]]))
        keep = ~np.isnan(base)
        return idx[keep], rows[keep], ratings[keep], base[keep]

    @property
    def offset(self) -> tuple[float, int] | None:
        """(offset_u, rated records it comes from), or None without a population to compare with."""
        if self.memory is None or not self.mode.reads_local:
            return None
        if self._offset is None:
            _, _, ratings, base = self._rated
            if not len(ratings):
                return None
            self._offset = (float((ratings - base).sum() / (len(ratings) + OFFSET_PRIOR)), len(ratings))
        return self._offset

    @cached_property
    def _neighbours(self) -> ItemNeighbours | None:
        from .global_memory.collaborative import neighbours_of

        if self.memory is None or not self.mode.reads_local:
            return None
        return neighbours_of(self.memory)

    def neighbours(self, row: int) -> float | None:
        """neighbours_ui: the user's residuals on the items the same people have as item `row`."""
        near, offset = self._neighbours, self.offset
        if near is None or offset is None:
            return None
        _, rows, ratings, base = self._rated
        known = rows >= 0
        if not known.any():
            return None
        s = near.similarity_to(row, rows[known])
        residual = ratings[known] - base[known] - offset[0]
        return float((s * residual).sum() / (np.abs(s).sum() + NEIGHBOUR_PRIOR))

    # ----- the user's own taste
    @cached_property
    def liked(self) -> np.ndarray:
        return liked_weights(self.history)

    @cached_property
    def together_all(self) -> np.ndarray | None:
        """together_ui for every item of the catalog (None when the mode reads no other person)."""
        memory = self.memory
        near = self._neighbours
        if memory is None or memory.items is None or near is None or not len(self.history):
            return None
        rows, weights = [], []
        for record, weight in zip(self.history, self.liked, strict=True):
            row = memory.items.rows.get(record.item or "")
            if row is not None and weight > 0:
                rows.append(row)
                weights.append(weight)
        return near.scores(np.asarray(rows, dtype=np.int64), np.asarray(weights))

    def together(self, rows: np.ndarray) -> np.ndarray:
        scores = self.together_all
        return np.zeros(len(rows)) if scores is None else scores[rows]

    def content(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """content_ui of each vector (unit) and the index of the user's liked record most like it (-1: none)."""
        n = len(vectors)
        if not self.mode.reads_local or not len(self.history) or not len(self.vectors):
            return np.zeros(n), np.full(n, -1)
        weighted = np.clip(vectors @ self.vectors.T, 0.0, None) * self.liked[None, :]
        top = min(LIKED_TOP, weighted.shape[1])
        score = -np.partition(-weighted, top - 1, axis=1)[:, :top]
        best = np.where(weighted.max(axis=1) > 0, np.argmax(weighted, axis=1), -1)
        return score.mean(axis=1), best

    def own_estimate(self, vector: np.ndarray) -> float | None:
        """`local`: the similarity-weighted mean of the user's ratings of their OWN_K records most like it."""
        rated = np.array([i for i, r in enumerate(self.history) if r.rating is not None], dtype=np.int64)
        if not len(rated):
            return None
        sims = self.vectors[rated] @ vector
        near = np.argsort(-sims)[:OWN_K]
        weights = np.maximum(sims[near], 1e-3)
        values = np.array([float(self.history[i].rating or 0.0) for i in rated[near]])
        return float((weights * values).sum() / weights.sum())

    # ----- everything about some items
    def items(self, rows: Sequence[int]) -> list[ItemEvidence]:
        """What memory knows about each item row (rows of the catalog's item table)."""
        catalog, snap = self.catalog, self.snapshot
        if catalog is None or catalog.items is None or snap is None or not len(rows):
            return []
        table = catalog.items
        idx = np.asarray(rows, dtype=np.int64)
        population = self.population(idx) if self.memory is not None else np.full(len(idx), np.nan)
        together = self.together(idx)
        content, best = self.content(table.vectors[idx])
        offset = self.offset
        low, high = self.memory.rating_range if self.memory is not None and self.memory.rating_range else (None, None)
        out = []
        for j, row in enumerate(idx):
            pop = None if np.isnan(population[j]) else float(population[j])
            near = self.neighbours(int(row)) if pop is not None else None
            estimate = None
            if pop is not None:
                estimate = pop + (offset[0] if offset else 0.0) + (near or 0.0)
                if low is not None and high is not None:
                    estimate = min(max(estimate, low), high)
            elif self.mode == Memory.LOCAL:
                estimate = self.own_estimate(table.vectors[row])
            record = self.history[int(best[j])] if best[j] >= 0 else None
            public_mean = snap.rating_mean[row]
            out.append(
                ItemEvidence(
                    item=table.names[row],
                    row=int(row),
                    population=pop,
                    rating_mean=None if np.isnan(public_mean) or self.memory is None else float(public_mean),
                    ratings=int(snap.ratings[row]) if self.memory is not None else 0,
                    raters=int(snap.users[row]) if self.memory is not None else 0,
                    offset=offset[0] if offset and pop is not None else None,
                    neighbours=near,
                    estimate=estimate,
                    together=float(together[j]),
                    content=float(content[j]),
                    because=(record.item or record.text[:60]) if record is not None else None,
                    because_rating=record.rating if record is not None else None,
                    rating_mean_noise=snap.mean_noise_sd(row) if self.memory is not None else None,
                    raters_noise=snap.users_noise_sd(row) if self.memory is not None else None,
                )
            )
        return out

    # ----- what the user said
    def stated_clauses(self, vector: np.ndarray, limit: int = STATED_RECORDS) -> list[tuple[str, int]]:
        """The clauses of the user's stated preferences (`preferences`), from the `limit` statements most like
        the question, each +1 (liked) or -1 (avoided). None in modes that read no user history."""
        if not self.mode.reads_local or not len(self.history):
            return []
        stating = [i for i, r in enumerate(self.history) if states_preference(r.text)]
        if not stating:
            return []
        sims = self.vectors[stating] @ vector if len(self.vectors) else np.zeros(len(stating))
        chosen = [stating[i] for i in np.argsort(-sims)[:limit]]
        return [c for i in chosen for c in clauses(self.history[i].text)]

    def popularity(self, rows: np.ndarray, recent_days: float = RECENT_DAYS) -> dict[str, np.ndarray]:
        """popular_i, recent_i and community_i of each row (see the module docstring), 0..1."""
        catalog, snap = self.catalog, self.snapshot
        if catalog is None or catalog.items is None or snap is None:
            zeros = np.zeros(len(rows))
            return {"popular": zeros, "recent": zeros, "community": zeros}
        table = catalog.items
        recent = table.recent_users(catalog.as_of_time, recent_days * 86_400.0)[rows]
        community = np.zeros(len(rows))
        if self.community is not None:
            mine = table.snapshot(catalog.as_of_time, catalog.min_users, self.community).community_users
            community = mine[rows] if mine is not None else community
        return {"popular": log_share(snap.users[rows]), "recent": log_share(recent), "community": log_share(community)}


def stated_scores(
    options: np.ndarray, said: np.ndarray, signs: Sequence[int]
) -> tuple[np.ndarray, list[int | None], list[int | None], np.ndarray]:
    """For option vectors against the user's statement clauses (vectors and +1/-1 signs): each option's sum of
    sign x similarity, its most similar liked clause and avoided clause (indices, None: none), and its
    similarity to that avoided clause."""
    sims = options @ said.T  # options x clauses
    sign = np.asarray(signs, dtype=np.float64)
    score = (sims * sign[None, :]).sum(axis=1)
    liked_idx: list[int | None] = []
    avoided_idx: list[int | None] = []
    avoided_sim = np.zeros(len(options))
    for j, row in enumerate(sims):
        likes = np.flatnonzero(sign > 0)
        avoids = np.flatnonzero(sign < 0)
        liked_idx.append(int(likes[np.argmax(row[likes])]) if len(likes) else None)
        if len(avoids):
            worst = int(avoids[np.argmax(row[avoids])])
            avoided_idx.append(worst)
            avoided_sim[j] = row[worst]
        else:
            avoided_idx.append(None)
    return score, liked_idx, avoided_idx, avoided_sim


def log_share(counts: np.ndarray) -> np.ndarray:
    x = np.log1p(counts.astype(np.float64))
    top = float(x.max()) if len(x) else 0.0
    out: np.ndarray = x / top if top > 0 else np.zeros_like(x)
    return out
