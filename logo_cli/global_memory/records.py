"""Stages 4-8 of the global memory build (`build` runs them): one pass over the store turns every record
into scalars (`Records`), from which come the as-of timeline, the item table, the clusters' descriptions and the
users' profiles.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..terms import terms
from .model import Cluster, ItemTable, Timeline, UserProfile, profile_from_counts
from .snapshot import Batch, Snapshot

PASS_BATCH = 20_000  # records per batch of the assignment pass (examples are the top of each batch's)
ITEM_TABLE_MAX = 50_000  # most-rated items whose population rating answers "how would they rate X" (77 MB)
ITEM_TEXTS = 50  # records per item whose words describe it (bounds the build's work on common items)
ITEM_TERMS = 24  # terms kept per item
ITEM_CANDIDATES = 20  # items per cluster whose users' first times are kept for as-of views
KEYWORDS_SHOWN = 6
KEYWORD_WORDS_PER_RECORD = 2  # a record counts its person for at most this many of its cluster's candidates
TOP_ITEMS = 5  # shared items named per cluster (<= ITEM_CANDIDATES: they are read from the timeline's)
UNDATED = 1e300  # JSON has no infinity: undated first times are stored as this, after every real time


def unit_rows(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)).astype(np.float32)
    return out


# -------------------------------------------------------------------------------------------- 4. assign


@dataclass
class Records:
    """The build's state after the pass, which stages 5-10 read: every record of the store as scalars, one row
    each (its cluster, user, item (-1: none), label (-1), time (inf: undated) and rating (NaN)), the names
    behind the indices, and what the pass gathered besides."""

    k: int
    cluster: np.ndarray
    user: np.ndarray
    item: np.ndarray
    label: np.ndarray
    ts: np.ndarray
    rating: np.ndarray
    user_names: list[str]
    item_names: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    similarity_sum: float = 0.0  # of each record to its centroid
    item_vectors: np.ndarray | None = None  # sum of each item's record vectors, one row per item
    vector_row: dict[int, int] = field(default_factory=dict)  # item index -> row in item_vectors
    item_terms: dict[int, Counter[str]] = field(default_factory=dict)  # item index -> terms of its first texts
    examples: list[list[tuple[float, str, str]]] = field(default_factory=list)  # per cluster: (similarity, user, id)
    texts: dict[str, str] = field(default_factory=dict)  # the examples' texts by record id

    @property
    def n(self) -> int:
        return len(self.cluster)

    @cached_property
    def user_counts(self) -> np.ndarray:
        """users x k: how many records each user has in each cluster."""
        n_users, k = len(self.user_names), self.k
        cells = self.user.astype(np.int64) * k + self.cluster
        counts: np.ndarray = np.bincount(cells, minlength=n_users * k).reshape(n_users, k)
        return counts


def assign_records(
    snapshot: Snapshot, centroids: np.ndarray, texts: dict[str, str], keywords: KeywordPeople | None = None
) -> Records:
    """One pass over the snapshot, PASS_BATCH records at a time: every record to its nearest centroid, its
    fields as scalars, and per-batch statistics accumulated (memory holds one batch of vectors). `texts` (id
    -> text, the fit sample's) spares reading the texts of most cluster examples again. `keywords`, when
    given, counts the people of every record's cluster's candidates."""
    acc = _Accumulator(len(centroids))
    for batch in snapshot.batches(PASS_BATCH):
        acc.add(batch, centroids)
        if keywords is not None:
            keywords.add(acc.cluster[-1], batch.embedding_texts(), acc.user[-1].tolist())
    example_ids = [uid for found in acc.examples for _, _, uid in found]
    found = {uid: texts[uid] for uid in example_ids if uid in texts}
    missing = sorted({acc.example_pos[uid] for uid in example_ids if uid not in texts})
    if missing:
        read = snapshot.take(np.asarray(missing, dtype=np.int64), vectors=False)
        found |= dict(zip(read.uids, read.embedding_texts(), strict=True))
    return Records(
        k=acc.k,
        cluster=np.concatenate(acc.cluster),
        user=np.concatenate(acc.user),
        item=np.concatenate(acc.item),
        label=np.concatenate(acc.label),
        ts=np.concatenate(acc.ts),
        rating=np.concatenate(acc.rating),
        user_names=list(acc.users),
        item_names=list(acc.items),
        label_names=list(acc.labels),
        similarity_sum=acc.similarity_sum,
        item_vectors=acc.item_vectors,
        vector_row=acc.vector_row,
        item_terms=acc.item_terms,
        examples=acc.examples,
        texts=found,
    )


def _global(table: dict[str, int], codes: np.ndarray, names: list[str]) -> np.ndarray:
    """A batch's indices (into its own names, in order of first appearance) as indices into `table`, which
    numbers every name in order of first appearance in the whole pass; -1 stays -1."""
    mapping = np.array([table.setdefault(name, len(table)) for name in names] + [-1], dtype=np.int32)
    out: np.ndarray = mapping[codes]
    return out


@dataclass
class _Accumulator:
    k: int
    users: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    cluster: list[np.ndarray] = field(default_factory=list)
    user: list[np.ndarray] = field(default_factory=list)
    item: list[np.ndarray] = field(default_factory=list)
    label: list[np.ndarray] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    rating: list[np.ndarray] = field(default_factory=list)
    similarity_sum: float = 0.0
    item_vectors: np.ndarray | None = None  # sum of each item's record vectors, one row per item
    vector_row: dict[int, int] = field(default_factory=dict)  # item index -> row in item_vectors
    examples: list[list[tuple[float, str, str]]] = field(default_factory=list)  # (similarity, user, id)
    example_pos: dict[str, int] = field(default_factory=dict)  # an example's id -> its position in the snapshot
    item_terms: dict[int, Counter[str]] = field(default_factory=dict)  # item index -> terms of its first texts
    item_texts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # texts read per item
    item_readers: set[tuple[int, int]] = field(default_factory=set)  # (item, user) whose words were counted

    def add(self, batch: Batch, centroids: np.ndarray) -> None:
        sims = batch.vectors @ centroids.T
        assigned = np.argmax(sims, axis=1)
        best = sims[np.arange(len(assigned)), assigned]
        self.similarity_sum += float(best.sum())

        self.cluster.append(assigned.astype(np.int32))
        self.user.append(_global(self.users, batch.user, batch.user_names))
        item = _global(self.items, batch.item, batch.item_names)
        self.item.append(item)
        self.label.append(_global(self.labels, batch.label, batch.label_names))
        self.ts.append(batch.ts)
        self.rating.append(batch.rating)

        mask = item >= 0  # every record about an item, rated or not: mentions count for recommending
        rated_items = item[mask]
        if len(rated_items):
            from scipy import sparse

            touched, row = np.unique(rated_items, return_inverse=True)
            rows = np.array([self.vector_row.setdefault(int(i), len(self.vector_row)) for i in touched])
            if self.item_vectors is None or len(self.vector_row) > len(self.item_vectors):
                size = max(int(1.5 * len(self.vector_row)), 1024)
                grown = np.zeros((size, batch.vectors.shape[1]), dtype=np.float32)
                if self.item_vectors is not None:
                    grown[: len(self.item_vectors)] = self.item_vectors
                self.item_vectors = grown
            onehot = sparse.csr_matrix(  # sums the batch's vectors per item; np.add.at is far slower
                (np.ones(len(row), np.float32), (row, np.arange(len(row)))), shape=(len(touched), len(row))
            )
            self.item_vectors[rows] += onehot @ batch.vectors[mask]
            self._add_item_terms(batch, item)

        users = [batch.user_names[i] for i in batch.user]
        if not self.examples:
            self.examples = [[] for _ in range(self.k)]
        for c in np.unique(assigned):
            rows = np.flatnonzero(assigned == c)
            for row in rows[np.argsort(-best[rows])][:10]:
                self.examples[c].append((float(best[row]), users[row], batch.uids[row]))
                self.example_pos[batch.uids[row]] = int(batch.pos[row])
            self.examples[c] = sorted(self.examples[c], reverse=True)[:30]

    def _add_item_terms(self, batch: Batch, item: np.ndarray) -> None:
        """What each item's records say about it, from its first ITEM_TEXTS records with a text (in the
        store's order): only those rows' texts are read. A person's words count once per item (their first
        text of it), so a term's count is its people."""
        if len(self.items) > len(self.item_texts):
            self.item_texts = np.concatenate(
                [self.item_texts, np.zeros(len(self.items) - len(self.item_texts), np.int64)]
            )
        rows = np.flatnonzero((item >= 0) & batch.has_text())
        rows = rows[self.item_texts[item[rows]] < ITEM_TEXTS]
        if not len(rows):
            return
        order = np.argsort(item[rows], kind="stable")
        grouped = item[rows][order]
        first = np.r_[0, np.flatnonzero(grouped[1:] != grouped[:-1]) + 1]
        rank = np.arange(len(grouped)) - np.repeat(first, np.diff(np.r_[first, len(grouped)]))
        keep = np.zeros(len(rows), dtype=bool)
        keep[order] = self.item_texts[grouped] + rank < ITEM_TEXTS
        rows = rows[keep]
        np.add.at(self.item_texts, item[rows], 1)
        people = self.user[-1][rows]
        for idx, code, text, who in zip(item[rows], batch.item[rows], batch.texts(rows), people, strict=True):
            if (int(idx), int(who)) in self.item_readers:
                continue
            self.item_readers.add((int(idx), int(who)))
            named = set(terms(batch.item_names[code]))  # beyond its name: "Star Wars" is no war film
            self.item_terms.setdefault(int(idx), Counter()).update(set(terms(text)) - named)


class KeywordPeople:
    """Distinct people per cluster's candidate keyword, counted over the records added (the assignment pass
    adds every record of the store; the fit sample only chose the candidates). A record counts its person for
    at most KEYWORD_WORDS_PER_RECORD of its cluster's candidates (its best-ranked), so one record moves the
    counts by at most that much (given the clusters and candidates): the sensitivity of their release."""

    def __init__(self, candidates: list[list[str]], token_pattern: str) -> None:
        self.candidates = candidates
        self._ranks = [{w: r for r, w in enumerate(words)} for words in candidates]
        self._seen: list[dict[str, set[str | int]]] = [{} for _ in candidates]
        self._tokens = re.compile(token_pattern)

    def add(self, clusters: np.ndarray, texts: Sequence[str], users: Sequence[str | int]) -> None:
        """Each record's cluster, embedded text and person (a name, or the pass's index of one)."""
        for c, text, user in zip(clusters.tolist(), texts, users, strict=True):
            rank = self._ranks[c]
            if not rank:
                continue
            hits = sorted({rank[t] for t in self._tokens.findall(text.lower()) if t in rank})
            for r in hits[:KEYWORD_WORDS_PER_RECORD]:
                self._seen[c].setdefault(self.candidates[c][r], set()).add(user)

    def kept(self, min_users: int) -> list[dict[str, int]]:
        """Each cluster's candidates that at least `min_users` people used, in score order, with their people."""
        return [
            {w: len(seen[w]) for w in words if len(seen.get(w, ())) >= min_users}
            for words, seen in zip(self.candidates, self._seen, strict=True)
        ]


# ------------------------------------------------------------------------------------------ 5. timeline


def build_timeline(records: Records) -> Timeline:
    """Records by (cluster, time) with per-cluster cumulative ratings; each (cluster, user)'s first record and
    first rating; each cluster's most shared items with their users' first times: every as-of statistic."""
    cluster, user, ts, rating, k = records.cluster, records.user, records.ts, records.rating, records.k
    order, record_ts, record_offsets = _per_cluster_sorted(cluster, ts, k)
    rated = ~np.isnan(rating[order])
    rating_cum = _cumsum_per_cluster(np.where(rated, rating[order], 0.0), record_offsets)
    rated_cum = _cumsum_per_cluster(rated.astype(np.int64), record_offsets)
    (first_cluster, _), first_ts = _first_times([cluster, user], ts)
    _, user_first_ts, user_offsets = _per_cluster_sorted(first_cluster, first_ts, k)
    rated_rows = ~np.isnan(rating)
    (rater_cluster, _), rater_ts = _first_times([cluster[rated_rows], user[rated_rows]], ts[rated_rows])
    _, rater_first_ts, rater_offsets = _per_cluster_sorted(rater_cluster, rater_ts, k)
    return Timeline(
        record_ts=record_ts,
        record_offsets=record_offsets,
        rating_cum=rating_cum,
        rated_cum=rated_cum,
        user_first_ts=user_first_ts,
        user_offsets=user_offsets,
        rater_first_ts=rater_first_ts,
        rater_offsets=rater_offsets,
        item_first_ts=_cluster_items(records),
    )


def _cluster_items(records: Records) -> dict[int, dict[str, list[float]]]:
    """cluster -> its ITEM_CANDIDATES items with the most distinct users (ties by name) -> those users' first
    times in the cluster, sorted (undated as UNDATED)."""
    names, with_item = records.item_names, records.item >= 0
    (ic, ii, _), it = _first_times(
        [records.cluster[with_item], records.item[with_item], records.user[with_item]], records.ts[with_item]
    )
    out: dict[int, dict[str, list[float]]] = {}
    if not len(ic):
        return out
    pair = ic.astype(np.int64) * max(len(names), 1) + ii
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    bounds = np.r_[starts, len(pair)]
    groups: dict[int, list[tuple[int, int, int]]] = {}  # cluster -> (users, item, start)
    for g, start in enumerate(starts):
        groups.setdefault(int(ic[start]), []).append((int(bounds[g + 1] - start), int(ii[start]), int(start)))
    for c, entries in groups.items():
        entries.sort(key=lambda e: (-e[0], names[e[1]]))
        out[c] = {
            names[i]: sorted(min(float(x), UNDATED) for x in it[start : start + count])
            for count, i, start in entries[:ITEM_CANDIDATES]
        }
    return out


def _first_times(keys: list[np.ndarray], ts: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """For each distinct tuple of keys, its earliest time; sorted by (keys..., time)."""
    if not len(ts):
        return [k[:0] for k in keys], ts[:0]
    order = np.lexsort((ts, *reversed(keys)))  # lexsort's last key is the primary one
    sorted_keys = [k[order] for k in keys]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = True
    for k in sorted_keys:
        repeat[1:] &= k[1:] == k[:-1]
    return [k[~repeat] for k in sorted_keys], ts[order][~repeat]


def _per_cluster_sorted(cluster: np.ndarray, ts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order by (cluster, time); offsets slice each cluster."""
    order = np.lexsort((ts, cluster))
    offsets = np.searchsorted(cluster[order], np.arange(k + 1), side="left")
    return order, ts[order], offsets


def _cumsum_per_cluster(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Running sums that restart at each cluster's first row."""
    total = np.cumsum(values)
    starts = offsets[:-1]
    base = np.where(starts > 0, total[np.maximum(starts - 1, 0)] if len(total) else 0, 0)
    out: np.ndarray = total - np.repeat(base, np.diff(offsets))
    return out


# --------------------------------------------------------------------------------------------- 6. items


def build_items(records: Records, min_users: int) -> ItemTable | None:
    """The items that at least min_users people have records about (the ITEM_TABLE_MAX most shared), with
    each distinct user's first record of it, the item's ratings (sorted by time for as-of views), its mean
    vector and its terms. `user_community` holds user indices until `fill_item_communities`."""
    item, user, ts, rating, names = records.item, records.user, records.ts, records.rating, records.item_names
    mentioned = item >= 0
    if records.item_vectors is None or not mentioned.any():
        return None
    (user_item, user_rows), user_first = _first_times([item[mentioned], user[mentioned]], ts[mentioned])
    users = np.bincount(user_item, minlength=len(names))
    shared = np.flatnonzero(users >= min_users)
    if not len(shared):
        return None
    shared = shared[np.argsort(-users[shared], kind="stable")][:ITEM_TABLE_MAX]
    shared.sort()
    new_row = np.full(len(names), -1, dtype=np.int64)
    new_row[shared] = np.arange(len(shared))

    kept_users = new_row[user_item] >= 0
    order, user_ts, user_offsets = _per_cluster_sorted(
        new_row[user_item[kept_users]], user_first[kept_users], len(shared)
    )
    rated = mentioned & ~np.isnan(rating)
    keep = rated.copy()
    keep[rated] = new_row[item[rated]] >= 0
    rating_order, rating_ts, offsets = _per_cluster_sorted(new_row[item[keep]], ts[keep], len(shared))
    rating_cum = _cumsum_per_cluster(rating[keep][rating_order], offsets)
    (rater_item, _), rater_first = _first_times([item[rated], user[rated]], ts[rated])
    kept_raters = new_row[rater_item] >= 0
    _, rater_ts, rater_offsets = _per_cluster_sorted(
        new_row[rater_item[kept_raters]], rater_first[kept_raters], len(shared)
    )
    vectors = unit_rows(records.item_vectors[[records.vector_row[int(i)] for i in shared]])
    table = ItemTable(
        names=[names[i] for i in shared],
        vectors=vectors,
        rating_ts=rating_ts,
        rating_cum=rating_cum,
        offsets=offsets,
        rater_ts=rater_ts,
        rater_offsets=rater_offsets,
        user_ts=user_ts,
        user_offsets=user_offsets,
        user_index=user_rows[kept_users][order].astype(np.int32),
        user_community=user_rows[kept_users][order].astype(np.int32),  # user indices until communities exist
    )
    _add_item_terms(table, [records.item_terms.get(int(i), Counter()) for i in shared], min_users)
    return table


def _add_item_terms(items: ItemTable, per_item: list[Counter[str]], min_users: int) -> None:
    """Each shared item's ITEM_TERMS most telling terms (tf-idf over the items: how many of its people use a
    term, against how many items use it), as a vocabulary and CSR arrays on the table. A term needs min_users
    of the item's people: a word one person wrote was a term, and a question that ruled it out ("no almonds")
    dropped the item, telling anyone what that person wrote (found by a helper playing attacker)."""
    per_item = [Counter({t: n for t, n in c.items() if n >= min_users}) for c in per_item]
    df: Counter[str] = Counter()
    for c in per_item:
        df.update(c.keys())
    n = max(len(per_item), 1)
    vocabulary: dict[str, int] = {}
    ids: list[int] = []
    weights: list[float] = []
    offsets = [0]
    for c in per_item:
        total = max(sum(c.values()), 1)
        scored = sorted(
            ((count / total * math.log(1 + n / df[t]), t) for t, count in c.items()), key=lambda x: (-x[0], x[1])
        )[:ITEM_TERMS]
        for weight, term in scored:
            ids.append(vocabulary.setdefault(term, len(vocabulary)))
            weights.append(weight)
        offsets.append(len(ids))
    items.term_vocabulary = np.array(list(vocabulary), dtype=str)
    items.term_ids = np.asarray(ids, dtype=np.int32)
    items.term_weights = np.asarray(weights, dtype=np.float32)
    items.term_offsets = np.asarray(offsets, dtype=np.int64)


def fill_item_communities(items: ItemTable, member: np.ndarray) -> None:
    """Each mention's user -> that user's community (-1: none), for community popularity."""
    if len(member):
        items.user_community = member[items.user_community]


# ------------------------------------------------------------------------------------------ 7. clusters


def time_segments(ts: np.ndarray, segments: int) -> list[float]:
    """`segments` equal periods from the first dated record to the last (boundaries), or none."""
    timed = np.isfinite(ts)
    if not timed.any():
        return []
    return segments_between(float(ts[timed].min()), float(ts[timed].max()), segments)


def segments_between(first: float | None, last: float | None, segments: int) -> list[float]:
    if first is None or last is None or segments <= 0:
        return []
    return [float(x) for x in np.linspace(first, last + 1e-6, segments + 1)]


def describe_clusters(
    records: Records, timeline: Timeline, keywords: list[dict[str, int]], segments: list[float], min_users: int
) -> list[Cluster]:
    """Each cluster's size, users, keywords, shared items, rating mean (when min_users people rated), labels,
    examples (nearest texts from distinct users), trend over the segments, and privacy."""
    k = records.k
    examples = []
    for c in range(k):
        texts, seen = [], set()
        for _, who, uid in records.examples[c] if records.examples else []:
            if who not in seen and uid in records.texts:
                texts.append(records.texts[uid][:240])
                seen.add(who)
            if len(texts) == 3:
                break
        examples.append(texts)
    return clusters_from(
        sizes=np.bincount(records.cluster, minlength=k),
        users=(records.user_counts > 0).sum(axis=0),
        labels=_label_counts(records, min_users),
        examples=examples,
        timeline=timeline,
        keywords=keywords,
        segments=segments,
        min_users=min_users,
    )


def clusters_from(
    *,
    sizes: np.ndarray,
    users: np.ndarray,
    labels: dict[int, dict[str, int]],
    examples: list[list[str]],
    timeline: Timeline,
    keywords: list[dict[str, int]],
    segments: list[float],
    min_users: int,
) -> list[Cluster]:
    """The clusters from their aggregates (both engines): sizes and distinct users per cluster, label counts
    (labels in order of first appearance), up to 3 example texts each, the timeline, and the keyword candidates
    with their people (`stages.keyword_candidates`, `KeywordPeople`)."""
    raters = np.diff(timeline.rater_offsets)
    clusters: list[Cluster] = []
    per_segment = []
    for c in range(len(sizes)):
        lo, hi = timeline.record_offsets[c], timeline.record_offsets[c + 1]
        n_rated = int(timeline.rated_cum[hi - 1]) if hi > lo else 0
        mean = None
        if n_rated and raters[c] >= min_users:
            mean = round(float(timeline.rating_cum[hi - 1]) / n_rated, 3)
        if segments:
            per_segment.append(np.diff(np.searchsorted(timeline.record_ts[lo:hi], segments, side="left")))
        shared = timeline.item_first_ts.get(c, {}).items()  # most shared first: the top ones are among them
        clusters.append(
            Cluster(
                id=c,
                size=int(sizes[c]),
                users=int(users[c]),
                keywords=list(keywords[c])[:KEYWORDS_SHOWN] if c < len(keywords) else [],
                top_items=[(name, len(first)) for name, first in shared if len(first) >= min_users][:TOP_ITEMS],
                rating_mean=mean,
                rating_count=n_rated if mean is not None else 0,
                labels=dict(sorted(labels.get(c, {}).items(), key=lambda kv: -kv[1])[:10]),
                examples=examples[c] if c < len(examples) else [],
                trend=[],
                private=int(users[c]) < min_users,
                keyword_people=dict(keywords[c]) if c < len(keywords) else {},
            )
        )
    if per_segment:
        totals = np.sum(per_segment, axis=0)
        for cl, mine in zip(clusters, per_segment, strict=True):
            cl.trend = [round(float(m / t), 4) if t else 0.0 for m, t in zip(mine, totals, strict=True)]
    return clusters


def _label_counts(records: Records, min_users: int) -> dict[int, dict[str, int]]:
    """cluster -> label -> records, for the labels at least min_users people gave in the cluster (one person's
    label named them: a helper playing attacker saw "hiv-positive" of one record in the cluster view), in the
    order of their first appearance in the store."""
    has, width = records.label >= 0, max(len(records.label_names), 1)
    pair = records.cluster[has].astype(np.int64) * width + records.label[has]
    people = np.unique(np.stack([pair, records.user[has].astype(np.int64)]), axis=1)[0] if has.any() else pair
    known, many = np.unique(people, return_counts=True)
    enough = set(known[many >= min_users].tolist())
    out: dict[int, dict[str, int]] = {}
    for value, count in zip(*np.unique(pair, return_counts=True), strict=True):
        if int(value) in enough:
            c, label = divmod(int(value), width)
            out.setdefault(c, {})[records.label_names[label]] = int(count)
    return out


# ------------------------------------------------------------------------------------------ 8. profiles


def profile_users(records: Records) -> dict[str, UserProfile]:
    """Each user's distribution over clusters, diversity and rating mean (communities come later)."""
    n_users = len(records.user_names)
    rated = ~np.isnan(records.rating)
    rating_sum = np.bincount(records.user[rated], weights=records.rating[rated], minlength=n_users)
    rating_n = np.bincount(records.user[rated], minlength=n_users)
    return profiles_from(records.user_names, records.user_counts, rating_sum, rating_n)


def profiles_from(
    names: list[str], user_counts: np.ndarray, rating_sum: np.ndarray, rating_n: np.ndarray
) -> dict[str, UserProfile]:
    """Profiles from each user's records per cluster and rating sum and count (both engines)."""
    profiles: dict[str, UserProfile] = {}
    population = user_counts.sum(axis=0).astype(np.float64)  # every cluster's records
    for u, name in enumerate(names):
        profile = profile_from_counts(name, user_counts[u].astype(np.float64), population)
        profile.rating_mean = round(float(rating_sum[u] / rating_n[u]), 3) if rating_n[u] else None
        profiles[name] = profile
    return profiles
