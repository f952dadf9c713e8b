"""Building global memory from the store, in passes over pages of records so memory stays bounded.

1. sample: up to SAMPLE_SIZE records, to choose k (cosine silhouette) and the keyword vocabulary. A small
   store is read whole; a large one is sampled by id (a random FIT_SAMPLE records fetched by id), so the
   build reads the whole store only once, in step 3;
2. fit: exact k-means when the store is small, else mini-batch k-means seeded from the sample and refined
   on the fit sample (skipped by `--update`, which keeps the previous centroids);
3. assign: one pass over ids, metadata and vectors (no text): every record to its nearest centroid,
   accumulating per-record scalars (cluster, user, item, time, rating); vectors are not kept;
4. describe: sizes, users, class-based TF-IDF keywords (counted over every text of a small store, over the
   fit sample of a large one), shared items, ratings, labels, examples, trends, the as-of timeline, user
   profiles and communities.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import global_memory
from .errors import GlobalMemoryMissing, StoreError, UsageError
from .global_memory import (
    MIN_HISTORY_FOR_COMMUNITY,
    Cluster,
    Community,
    GlobalMemory,
    ItemTable,
    Timeline,
    UserProfile,
    profile_from_counts,
)
from .store import Page, Scan, Store
from .terms import terms

FULL_KMEANS_MAX = 50_000  # below this, exact k-means on all vectors is affordable and finds better optima
SAMPLE_SIZE = 4_000
FIT_SAMPLE = 50_000  # large stores: centroids and keywords from this many random records (>= 780 per cluster)
VOCABULARY = 20_000
# words people use about anything: they say nothing about a cluster's topic
_GENERIC = """like just really time good best great year years day days week weeks hours hour got get took use
used make made new old first last still way thing things lot bit pretty actually maybe much better little love
loved want went going think know need tried try says said finally today tonight yesterday ago minutes away right
long big small nice fine okay sure kind"""
GENERIC_WORDS = frozenset(_GENERIC.split())
ITEM_TABLE_MAX = 50_000  # most-rated items whose population rating answers "how would they rate X" (77 MB)
ITEM_TEXTS = 50  # records per item whose words describe it (bounds the build's work on common items)
ITEM_TERMS = 24  # terms kept per item
ITEM_CANDIDATES = 20  # items per cluster whose users' first times are kept for as-of views
UNDATED = 1e300  # JSON has no infinity: undated first times are stored as this, after every real time
DRIFT_ADVICE = 0.02  # a drop in mean similarity to centroids beyond this suggests a full rebuild
NEW_SHARE_ADVICE = 0.25  # so does this share of records added since the last full build


@dataclass
class BuildOptions:
    clusters: int | None = None  # None: choose k by silhouette
    communities: int | None = None  # None: choose by silhouette
    seed: int = 0
    min_users: int = 3
    segments: int = 4
    page_size: int = 5000
    update: bool = False  # keep the previous clusters, refresh every statistic


def build_global(
    store: Store,
    embedder_id: str,
    dim: int,
    home: Path,
    options: BuildOptions,
    progress: Callable[[str], None] | None = None,
    describe: Callable[[Cluster], str] | None = None,
) -> GlobalMemory:
    """Build and save a new global memory version (see the module docstring)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # duplicate points (e.g. users with identical distributions) make k-means warn; the result stays valid
        warnings.simplefilter("ignore", ConvergenceWarning)
        memory = _build(store, embedder_id, dim, home, options, progress or (lambda _msg: None))
    if describe is not None:
        for cluster in memory.clusters:
            if not cluster.private:
                cluster.description = describe(cluster)
    global_memory.save(memory, home)
    return memory


# --------------------------------------------------------------------------------------------- clustering


def _kmeans(k: int, n: int, seed: int) -> Any:
    """The k-means used to score a candidate k: one k-means++ start is enough to compare k's, and 4x cheaper."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n <= FULL_KMEANS_MAX:
        return KMeans(n_clusters=k, random_state=seed, n_init=1)
    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, batch_size=4096)


def k_candidates(n: int) -> list[int]:
    upper = max(2, min(64, int(math.sqrt(n / 2)) * 2))
    return [k for k in (2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64) if k <= upper]


def choose_k(x: np.ndarray, candidates: Sequence[int], seed: int) -> tuple[int, dict[int, float]]:
    """The k with the best cosine silhouette on the sample (vectors are unit length)."""
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    for k in candidates:
        if k < 2 or k >= len(x):
            continue
        labels = _kmeans(k, len(x), seed).fit_predict(x)
        if len(set(labels)) > 1:
            scores[k] = float(silhouette_score(x, labels, metric="cosine"))
    if not scores:
        return 1, {}
    return max(scores, key=lambda k: scores[k]), scores


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)).astype(np.float32)
    return out


def _fit_centroids(vectors: np.ndarray, sample: np.ndarray, k: int, seed: int, exact: bool) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if exact:
        return _unit(KMeans(n_clusters=k, random_state=seed, n_init=4).fit(vectors).cluster_centers_)
    # large stores: seed from the sample (k-means++ on a random sample avoids the store's insertion order),
    # then refine on the random fit sample
    init = KMeans(n_clusters=k, random_state=seed, n_init=2).fit(sample).cluster_centers_
    model = MiniBatchKMeans(n_clusters=k, init=init, n_init=1, random_state=seed, batch_size=4096)
    for start in range(0, len(vectors), 4096):
        model.partial_fit(vectors[start : start + 4096])
    return _unit(model.cluster_centers_)


# ---------------------------------------------------------------------------------------------- the pass


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
    item_terms: dict[int, Counter[str]] = field(default_factory=dict)  # item index -> terms of its first texts
    item_texts: dict[int, int] = field(default_factory=dict)  # how many texts each item's terms came from

    def add(self, page: Scan, centroids: np.ndarray) -> None:
        sims = page.embeddings @ centroids.T
        assigned = np.argmax(sims, axis=1)
        best = sims[np.arange(len(assigned)), assigned]
        self.similarity_sum += float(best.sum())
        metas = page.metadatas

        def index(table: dict[str, int], key: str | None) -> int:
            return -1 if key is None else table.setdefault(key, len(table))

        self.cluster.append(assigned.astype(np.int32))
        users = [m["user"] for m in metas]
        self.user.append(np.array([index(self.users, u) for u in users], dtype=np.int32))
        self.item.append(np.array([index(self.items, m.get("item")) for m in metas], dtype=np.int32))
        self.label.append(np.array([index(self.labels, m.get("label")) for m in metas], dtype=np.int32))
        self.ts.append(np.array([m.get("ts", np.inf) for m in metas], dtype=np.float64))
        self.rating.append(np.array([m.get("rating", np.nan) for m in metas], dtype=np.float64))

        mask = self.item[-1] >= 0  # every record about an item, rated or not: mentions count for recommending
        rated_items = self.item[-1][mask]
        if len(rated_items):
            from scipy import sparse

            touched, row = np.unique(rated_items, return_inverse=True)
            rows = np.array([self.vector_row.setdefault(int(i), len(self.vector_row)) for i in touched])
            if self.item_vectors is None or len(self.vector_row) > len(self.item_vectors):
                size = max(int(1.5 * len(self.vector_row)), 1024)
                grown = np.zeros((size, page.embeddings.shape[1]), dtype=np.float32)
                if self.item_vectors is not None:
                    grown[: len(self.item_vectors)] = self.item_vectors
                self.item_vectors = grown
            onehot = sparse.csr_matrix(  # sums the page's vectors per item; np.add.at is far slower
                (np.ones(len(row), np.float32), (row, np.arange(len(row)))), shape=(len(touched), len(row))
            )
            self.item_vectors[rows] += onehot @ page.embeddings[mask]

        for at in np.flatnonzero(mask):  # what each item's records say about it: bounded per item
            idx = int(self.item[-1][at])
            seen = self.item_texts.get(idx, 0)
            text = metas[at].get("text")
            if seen < ITEM_TEXTS and text:
                self.item_terms.setdefault(idx, Counter()).update(set(terms(text)))
                self.item_texts[idx] = seen + 1

        if not self.examples:
            self.examples = [[] for _ in range(self.k)]
        for c in np.unique(assigned):
            rows = np.flatnonzero(assigned == c)
            for row in rows[np.argsort(-best[rows])][:10]:
                self.examples[c].append((float(best[row]), users[row], page.ids[row]))
            self.examples[c] = sorted(self.examples[c], reverse=True)[:30]


def _keyword_counts(vectorizer: Any, texts: list[str], vectors: np.ndarray, centroids: np.ndarray) -> Any:
    """k x vocabulary word counts of the texts, each text counted in its nearest cluster."""
    from scipy import sparse

    assigned = np.argmax(vectors @ centroids.T, axis=1) if len(vectors) else np.zeros(0, dtype=np.int64)
    onehot = sparse.csr_matrix(
        (np.ones(len(assigned)), (assigned, np.arange(len(assigned)))), shape=(len(centroids), len(assigned))
    )
    return onehot @ vectorizer.transform(texts)


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


def _keywords(terms: Any, vocabulary: np.ndarray, top: int = 6) -> list[list[str]]:
    """Class-based TF-IDF (as in BERTopic): frequent in one cluster, rare overall."""
    if terms is None or terms.shape[1] == 0:
        return []
    counts = terms.toarray().astype(np.float64)
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log(1.0 + (counts.sum() / max(len(counts), 1)) / np.maximum(counts.sum(axis=0), 1))
    scores = tf * idf
    return [[str(vocabulary[i]) for i in np.argsort(-row)[:top] if row[i] > 0] for row in scores]


def _build(
    store: Store, embedder_id: str, dim: int, home: Path, options: BuildOptions, say: Callable[[str], None]
) -> GlobalMemory:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.metrics import silhouette_score

    started = time.time()
    store.open(embedder_id, dim, create=False)
    total = store.count()
    if total == 0:
        raise StoreError("The store is empty.", "Run `logo ingest FILE.jsonl` first.")
    previous = None
    if options.update:
        if not global_memory.exists(home):
            raise GlobalMemoryMissing()
        previous = global_memory.load(home)
        if previous.embedder != embedder_id:
            raise StoreError(f"Global memory was built with {previous.embedder}, not {embedder_id}.")

    small = total <= FULL_KMEANS_MAX
    rng = np.random.default_rng(options.seed)
    if small:  # read it whole: exact k-means, and keywords from every text
        say(f"reading {total} records")
        pages = list(store.pages(options.page_size))
        fit = Page([r for p in pages for r in p.records], np.concatenate([p.embeddings for p in pages]))
        del pages
        wanted = np.sort(rng.choice(len(fit.records), min(len(fit.records), SAMPLE_SIZE), replace=False))
    else:  # a random fit sample fetched by id; the full pass comes later and reads no text
        say(f"sampling {FIT_SAMPLE} of {total} records")
        ids = store.ids()
        chosen = np.sort(rng.choice(len(ids), min(len(ids), FIT_SAMPLE), replace=False))
        fit = store.fetch([ids[i] for i in chosen])
        del ids
        wanted = np.sort(rng.choice(len(fit.records), min(len(fit.records), SAMPLE_SIZE), replace=False))
    fit_texts = [r.embedding_text() for r in fit.records]
    sample = fit.embeddings[wanted]
    sample_texts = [fit_texts[i] for i in wanted]

    if previous is not None:
        centroids, k = previous.centroids, len(previous.clusters)
        selection: dict[str, Any] = {**previous.selection, "update": True}
    else:
        if options.clusters is not None:
            if not 1 <= options.clusters <= total:
                raise UsageError(f"--clusters must be between 1 and the number of records ({total}).")
            k, selection = options.clusters, {"clusters": {"method": "forced", "k": options.clusters}}
        else:
            say("choosing the number of clusters")
            k, scores = choose_k(sample, k_candidates(total), options.seed)
            selection = {
                "clusters": {
                    "method": "silhouette",
                    "k": k,
                    "sample": len(sample),
                    "scores": {str(c): round(s, 4) for c, s in scores.items()},
                }
            }
        say(f"clustering {total} records into {k} interest clusters")
        centroids = _fit_centroids(fit.embeddings, sample, k, options.seed, exact=small)

    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | GENERIC_WORDS),
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b",
        max_features=VOCABULARY,
    )
    try:
        vectorizer.fit(sample_texts)
    except ValueError:  # only stop words in the sample
        vectorizer = CountVectorizer(token_pattern=r"(?u)\b\w+\b").fit([*sample_texts, "empty"])

    terms = _keyword_counts(vectorizer, fit_texts, fit.embeddings, centroids)
    known_texts = {r.uid: text for r, text in zip(fit.records, fit_texts, strict=True)}
    del fit, fit_texts

    say("assigning records to clusters")
    acc = _Accumulator(k)
    for page in store.scan(max(options.page_size, 20_000)):
        acc.add(page, centroids)
    missing = [uid for found in acc.examples for _, _, uid in found if uid not in known_texts]
    if missing:
        known_texts |= {r.uid: r.embedding_text() for r in store.fetch(missing).records}

    say("describing clusters")
    cluster = np.concatenate(acc.cluster)
    user = np.concatenate(acc.user)
    item = np.concatenate(acc.item)
    label = np.concatenate(acc.label)
    ts = np.concatenate(acc.ts)
    rating = np.concatenate(acc.rating)
    n, n_users = len(cluster), len(acc.users)
    user_names = list(acc.users)
    item_names = list(acc.items)
    label_names = list(acc.labels)

    # the timeline: records by (cluster, time) with per-cluster cumulative ratings
    order, record_ts, record_offsets = _per_cluster_sorted(cluster, ts, k)
    rated = ~np.isnan(rating[order])
    rating_cum = _cumsum_per_cluster(np.where(rated, rating[order], 0.0), record_offsets)
    rated_cum = _cumsum_per_cluster(rated.astype(np.int64), record_offsets)
    (first_cluster, _), first_ts = _first_times([cluster, user], ts)
    _, user_first_ts, user_offsets = _per_cluster_sorted(first_cluster, first_ts, k)
    rated_rows = ~np.isnan(rating)
    (rater_cluster, _), rater_ts = _first_times([cluster[rated_rows], user[rated_rows]], ts[rated_rows])
    _, rater_first_ts, rater_offsets = _per_cluster_sorted(rater_cluster, rater_ts, k)

    # items: distinct users per (cluster, item), with each user's first time for as-of views
    with_item = item >= 0
    (ic, ii, _), it = _first_times([cluster[with_item], item[with_item], user[with_item]], ts[with_item])
    item_first_ts: dict[int, dict[str, list[float]]] = {}
    top_items: dict[int, list[tuple[str, int]]] = {c: [] for c in range(k)}
    if len(ic):
        pair = ic.astype(np.int64) * max(len(item_names), 1) + ii
        starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
        bounds = np.r_[starts, len(pair)]
        groups: dict[int, list[tuple[int, int, int]]] = {}
        for g, start in enumerate(starts):
            groups.setdefault(int(ic[start]), []).append((int(bounds[g + 1] - start), int(ii[start]), int(start)))
        for c, entries in groups.items():
            entries.sort(key=lambda e: (-e[0], item_names[e[1]]))
            item_first_ts[c] = {
                item_names[i]: sorted(min(float(x), UNDATED) for x in it[start : start + count])
                for count, i, start in entries[:ITEM_CANDIDATES]
            }
            top_items[c] = [(item_names[i], count) for count, i, _ in entries if count >= options.min_users][:5]

    items = _item_table(item, user, ts, rating, item_names, acc.item_vectors, acc.vector_row, options.min_users)
    if items is not None:
        _add_item_terms(items, acc.item_terms, {name: i for i, name in enumerate(item_names)})

    sizes = np.bincount(cluster, minlength=k)
    user_counts = np.bincount(user.astype(np.int64) * k + cluster, minlength=n_users * k).reshape(n_users, k)
    cluster_users = (user_counts > 0).sum(axis=0)
    raters = np.diff(rater_offsets)
    keywords = _keywords(terms, vectorizer.get_feature_names_out())

    timed = np.isfinite(ts)
    segments: list[float] = []
    if timed.any() and options.segments > 0:
        segments = [float(x) for x in np.linspace(ts[timed].min(), ts[timed].max() + 1e-6, options.segments + 1)]

    clusters: list[Cluster] = []
    per_segment = []
    for c in range(k):
        lo, hi = record_offsets[c], record_offsets[c + 1]
        n_rated = int(rated_cum[hi - 1]) if hi > lo else 0
        mean = None
        if n_rated and raters[c] >= options.min_users:
            mean = round(float(rating_cum[hi - 1]) / n_rated, 3)
        label_counts: dict[str, int] = {}
        rows = order[lo:hi]
        for value, count in zip(*np.unique(label[rows][label[rows] >= 0], return_counts=True), strict=True):
            label_counts[label_names[int(value)]] = int(count)
        examples, seen = [], set()
        for _, who, uid in acc.examples[c] if acc.examples else []:
            if who not in seen and uid in known_texts:
                examples.append(known_texts[uid][:240])
                seen.add(who)
            if len(examples) == 3:
                break
        if segments:
            per_segment.append(np.diff(np.searchsorted(record_ts[lo:hi], segments, side="left")))
        clusters.append(
            Cluster(
                id=c,
                size=int(sizes[c]),
                users=int(cluster_users[c]),
                keywords=keywords[c] if c < len(keywords) else [],
                top_items=top_items[c],
                rating_mean=mean,
                rating_count=n_rated if mean is not None else 0,
                labels=dict(sorted(label_counts.items(), key=lambda kv: -kv[1])[:10]),
                examples=examples,
                trend=[],
                private=int(cluster_users[c]) < options.min_users,
            )
        )
    if per_segment:
        totals = np.sum(per_segment, axis=0)
        for cl, mine in zip(clusters, per_segment, strict=True):
            cl.trend = [round(float(m / t), 4) if t else 0.0 for m, t in zip(mine, totals, strict=True)]

    say("profiling users")
    rating_sum = np.bincount(user[rated_rows], weights=rating[rated_rows], minlength=n_users)
    rating_n = np.bincount(user[rated_rows], minlength=n_users)
    profiles: dict[str, UserProfile] = {}
    for u, name in enumerate(user_names):
        profile = profile_from_counts(name, user_counts[u].astype(np.float64))
        profile.rating_mean = round(float(rating_sum[u] / rating_n[u]), 3) if rating_n[u] else None
        profiles[name] = profile

    say("grouping users into communities")
    placed = [u for u, name in enumerate(user_names) if profiles[name].history >= MIN_HISTORY_FOR_COMMUNITY]
    matrix = user_counts[placed] / np.maximum(user_counts[placed].sum(axis=1, keepdims=True), 1)
    communities: list[Community] = []
    community_centroids = np.zeros((0, k), dtype=np.float32)
    if placed:
        if previous is not None and len(previous.community_centroids):
            community_centroids = previous.community_centroids
            unit = community_centroids / np.maximum(np.linalg.norm(community_centroids, axis=1, keepdims=True), 1e-9)
            labels_ = np.argmax(_unit(matrix.astype(np.float32)) @ unit.T, axis=1)
            n_comm = len(community_centroids)
        else:
            if options.communities is not None:
                n_comm = max(1, min(options.communities, len(placed)))
                selection["communities"] = {"method": "forced", "c": n_comm}
            else:
                comm_scores: dict[int, float] = {}
                for c_try in range(2, min(16, len(placed) // 3) + 1):
                    lab = KMeans(n_clusters=c_try, random_state=options.seed, n_init=4).fit_predict(matrix)
                    if len(set(lab)) > 1:
                        comm_scores[c_try] = float(
                            silhouette_score(
                                matrix,
                                lab,
                                metric="cosine",
                                sample_size=min(len(matrix), 3000),
                                random_state=options.seed,
                            )
                        )
                n_comm = max(comm_scores, key=lambda c: comm_scores[c]) if comm_scores else 1
                selection["communities"] = {
                    "method": "silhouette",
                    "c": n_comm,
                    "scores": {str(c): round(s, 4) for c, s in comm_scores.items()},
                }
            km = KMeans(n_clusters=n_comm, random_state=options.seed, n_init=4).fit(matrix)
            community_centroids, labels_ = km.cluster_centers_.astype(np.float32), km.labels_
        for cid in range(n_comm):
            members = np.flatnonzero(labels_ == cid)
            mean_share = matrix[members].mean(axis=0) if len(members) else np.zeros(k)
            top = [(int(c), round(float(mean_share[c]), 4)) for c in np.argsort(-mean_share)[:3] if mean_share[c] > 0]
            communities.append(Community(id=cid, size=len(members), top_clusters=top))
            for member in members:
                profiles[user_names[placed[int(member)]]].community = cid

    if items is not None:  # each mention's user -> that user's community, for community popularity
        community_of = np.array(
            [-1 if profiles[name].community is None else profiles[name].community for name in user_names],
            dtype=np.int32,
        )
        items.user_community = community_of[items.user_community] if len(community_of) else items.user_community

    mean_similarity = round(acc.similarity_sum / max(n, 1), 4)
    drift: dict[str, Any] = {"mean_similarity": mean_similarity}
    if previous is not None:
        base = previous.drift.get("baseline_similarity", previous.drift.get("mean_similarity", mean_similarity))
        base_records = previous.drift.get("baseline_records", previous.records)
        new_share = max(0, n - base_records) / max(n, 1)
        drop = round(base - mean_similarity, 4)
        advised = drop > DRIFT_ADVICE or new_share > NEW_SHARE_ADVICE
        drift |= {
            "baseline_similarity": base,
            "baseline_records": base_records,
            "similarity_drop": drop,
            "new_records_share": round(new_share, 4),
            "rebuild_advised": advised,
        }
    else:
        drift |= {"baseline_similarity": mean_similarity, "baseline_records": n, "rebuild_advised": False}

    rated_all = rating[rated_rows]
    return GlobalMemory(
        version=global_memory.new_version(),
        built_at=time.time(),
        embedder=embedder_id,
        options=asdict(options),
        records=n,
        clusters=clusters,
        users=profiles,
        communities=communities,
        segments=segments,
        rating_range=(float(rated_all.min()), float(rated_all.max())) if len(rated_all) else None,
        rating_step=_rating_step(rated_all),
        selection={**selection, "seconds": round(time.time() - started, 2)},
        drift=drift,
        centroids=centroids,
        community_centroids=community_centroids,
        timeline=Timeline(
            record_ts=record_ts,
            record_offsets=record_offsets,
            rating_cum=rating_cum,
            rated_cum=rated_cum,
            user_first_ts=user_first_ts,
            user_offsets=user_offsets,
            rater_first_ts=rater_first_ts,
            rater_offsets=rater_offsets,
            item_first_ts=item_first_ts,
        ),
        items=items,
    )


def _item_table(
    item: np.ndarray,
    user: np.ndarray,
    ts: np.ndarray,
    rating: np.ndarray,
    names: list[str],
    vector_sums: np.ndarray | None,
    vector_row: dict[int, int],
    min_users: int,
) -> ItemTable | None:
    """The items that at least min_users people have records about (the ITEM_TABLE_MAX most shared), with
    each distinct user's first record of it and the item's ratings, sorted by time for as-of views.
    `user_community` is filled in once communities are known."""
    mentioned = item >= 0
    if vector_sums is None or not mentioned.any():
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
    vectors = _unit(vector_sums[[vector_row[int(i)] for i in shared]])
    return ItemTable(
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


def _add_item_terms(items: ItemTable, counts: dict[int, Counter[str]], index: dict[str, int]) -> None:
    """Each shared item's ITEM_TERMS most telling terms (tf-idf over the items: how many of its texts use a
    term, against how many items use it), as a vocabulary and CSR arrays on the table."""
    per_item = [counts.get(index[name], Counter()) for name in items.names]
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


def _rating_step(ratings: np.ndarray) -> float | None:
    """The finest step the ratings take: 1 for whole stars, 0.5 for half stars (MovieLens), and so on."""
    if not len(ratings):
        return None
    for step in (1.0, 0.5, 0.25, 0.1):
        if np.allclose(ratings / step, np.round(ratings / step), atol=1e-6):
            return step
    return None
