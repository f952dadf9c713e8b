"""Global memory: what the whole population shares, found by clustering everybody's records.

`build_global` reads every embedding from the store page by page, clusters them into interest clusters
(k chosen by silhouette on a sample unless forced), describes each cluster (class-based TF-IDF keywords,
shared items, ratings, labels, representative texts, popularity per time segment), profiles each user
(cluster distribution and its normalized entropy = diversity) and groups users into communities.

A build is written to a new version folder and switched to by replacing one pointer file at the end, so a
reader never sees half a build and a crashed build leaves the previous one in use.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from .errors import GlobalMemoryMissing, StoreError, UsageError
from .store import Store

FORMAT_VERSION = 1
POINTER = "CURRENT"
KEEP_VERSIONS = 2
MIN_HISTORY_FOR_COMMUNITY = 3  # fewer records cannot place a user; they are placed at ask time


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
    examples: list[str]  # texts nearest the centroid, from distinct users
    trend: list[float]  # share of each time segment's records that fall in this cluster
    private: bool  # fewer than min_users distinct users: never shown to other users


@dataclass
class UserProfile:
    user: str
    history: int
    distribution: dict[int, float]  # cluster id -> share of the user's records
    diversity: float  # normalized entropy of the distribution, 0 (one cluster) .. 1 (uniform)
    dominant: list[int]  # clusters holding most of the user's records, largest first
    community: int | None
    rating_mean: float | None = None


@dataclass
class Community:
    id: int
    size: int
    top_clusters: list[tuple[int, float]]  # (cluster id, mean share among members)


@dataclass
class BuildOptions:
    clusters: int | None = None  # None: choose k by silhouette
    communities: int | None = None  # None: choose by silhouette
    seed: int = 0
    min_users: int = 3
    segments: int = 4
    page_size: int = 5000


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
    selection: dict[str, Any] = field(default_factory=dict)  # how k and C were chosen
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    community_centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    # ----- queries used by the mediator -----
    def nearest_clusters(
        self, vector: np.ndarray, n: int, *, include_private: bool = False
    ) -> list[tuple[Cluster, float]]:
        if n <= 0 or not len(self.clusters):
            return []
        scores = self.centroids @ vector
        order = np.argsort(-scores)
        out: list[tuple[Cluster, float]] = []
        for idx in order:
            cluster = self.clusters[int(idx)]
            if cluster.private and not include_private:
                continue
            out.append((cluster, float(scores[idx])))
            if len(out) == n:
                break
        return out

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
        cents = self.community_centroids / np.maximum(
            np.linalg.norm(self.community_centroids, axis=1, keepdims=True), 1e-9
        )
        return self.communities[int(np.argmax(cents @ vec))]

    def profile_from_vectors(self, user: str, vectors: np.ndarray) -> UserProfile | None:
        """A profile computed at ask time (for `--at`, or a user ingested after the build)."""
        if len(vectors) == 0 or not len(self.clusters):
            return None
        k = len(self.clusters)
        counts = np.bincount(self.assign(vectors), minlength=k).astype(np.float64)
        shares = counts / counts.sum()
        dist = {int(c): round(float(s), 4) for c, s in enumerate(shares) if s > 0}
        community = self.community_for(dist) if len(vectors) >= MIN_HISTORY_FOR_COMMUNITY else None
        return UserProfile(
            user=user,
            history=len(vectors),
            distribution=dist,
            diversity=round(_entropy(shares, k), 4),
            dominant=_dominant(dist),
            community=community.id if community else None,
        )

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
        }


# ----------------------------------------------------------------------------------------------- building


FULL_KMEANS_MAX = 50_000  # below this, exact k-means is affordable and finds better optima than mini-batches


def _kmeans(k: int, n: int, seed: int) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n <= FULL_KMEANS_MAX:
        return KMeans(n_clusters=k, random_state=seed, n_init=4)
    return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096, max_iter=200)


def _choose_k(x: np.ndarray, candidates: Sequence[int], seed: int) -> tuple[int, dict[int, float]]:
    """The k with the best cosine silhouette on a sample (data are unit vectors)."""
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    sample = x if len(x) <= 4000 else x[rng.choice(len(x), 4000, replace=False)]
    scores: dict[int, float] = {}
    for k in candidates:
        if k < 2 or k >= len(sample):
            continue
        labels = _kmeans(k, len(sample), seed).fit_predict(sample)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(sample, labels, metric="cosine"))
    if not scores:
        return max(1, min(2, len(x))), {}
    return max(scores, key=lambda k: scores[k]), scores


def _k_candidates(n: int) -> list[int]:
    upper = max(2, min(64, int(math.sqrt(n / 2)) * 2))
    ks = sorted({k for k in (2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64) if k <= upper})
    return ks


def _keywords(texts_by_cluster: list[list[str]], top: int = 6) -> list[list[str]]:
    """Class-based TF-IDF (as in BERTopic): a term scores high when frequent in one cluster and rare overall."""
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [" ".join(texts) for texts in texts_by_cluster]
    if not any(doc.strip() for doc in docs):
        return [[] for _ in docs]
    vectorizer = CountVectorizer(
        stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b", max_features=50_000
    )
    try:
        counts = vectorizer.fit_transform(docs).astype(np.float64)
    except ValueError:  # only stop words
        return [[] for _ in docs]
    terms = vectorizer.get_feature_names_out()
    tf = counts.multiply(1.0 / np.maximum(counts.sum(axis=1), 1)).tocsr()
    freq = np.asarray(counts.sum(axis=0)).ravel()
    avg_words = counts.sum() / max(len(docs), 1)
    idf = np.log(1.0 + avg_words / np.maximum(freq, 1))
    scores = tf.multiply(idf).tocsr()
    out: list[list[str]] = []
    for row in range(scores.shape[0]):
        data = scores.getrow(row).toarray().ravel()
        best = np.argsort(-data)[:top]
        out.append([str(terms[i]) for i in best if data[i] > 0])
    return out


def _entropy(shares: np.ndarray, k: int) -> float:
    nz = shares[shares > 0]
    if k <= 1 or len(nz) == 0:
        return 0.0
    return max(0.0, float(-(nz * np.log(nz)).sum() / math.log(k)))


def _dominant(distribution: dict[int, float], mass: float = 0.8, most: int = 3) -> list[int]:
    out, total = [], 0.0
    for cid, share in sorted(distribution.items(), key=lambda kv: -kv[1]):
        out.append(cid)
        total += share
        if total >= mass or len(out) == most:
            break
    return out


def build_global(
    store: Store,
    embedder_id: str,
    dim: int,
    home: Path,
    options: BuildOptions,
    progress: Callable[[str], None] | None = None,
) -> GlobalMemory:
    """Build and save a new global memory version; see the module docstring."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # duplicate points (e.g. users with identical distributions) make k-means warn; the result stays valid
        warnings.simplefilter("ignore", ConvergenceWarning)
        return _build(store, embedder_id, dim, home, options, progress)


def _build(
    store: Store,
    embedder_id: str,
    dim: int,
    home: Path,
    options: BuildOptions,
    progress: Callable[[str], None] | None = None,
) -> GlobalMemory:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    say = progress or (lambda _msg: None)
    started = time.time()
    store.open(embedder_id, dim, create=False)
    total = store.count()
    if total == 0:
        raise StoreError("The store is empty.", "Run `logo ingest FILE.jsonl` first.")

    say(f"reading {total} records")
    users: list[str] = []
    stamps: list[float] = []
    items: list[str | None] = []
    ratings: list[float] = []
    labels: list[str | None] = []
    texts: list[str] = []
    vectors = np.zeros((total, dim), dtype=np.float32)
    n = 0
    for page in store.pages(options.page_size):
        size = min(len(page.records), total - n)
        vectors[n : n + size] = page.embeddings[:size]
        for record in page.records[:size]:
            users.append(record.user)
            stamps.append(record.timestamp if record.timestamp is not None else math.nan)
            items.append(record.item)
            ratings.append(record.rating if record.rating is not None else math.nan)
            labels.append(record.label)
            texts.append(record.embedding_text())
        n += size
    vectors = vectors[:n]

    if options.clusters is not None:
        if not 1 <= options.clusters <= n:
            raise UsageError(f"--clusters must be between 1 and the number of records ({n}).")
        k, selection = options.clusters, {"clusters": {"method": "forced", "k": options.clusters}}
    else:
        say("choosing the number of clusters")
        k, scores = _choose_k(vectors, _k_candidates(n), options.seed)
        selection = {
            "clusters": {"method": "silhouette", "k": k, "scores": {str(c): round(s, 4) for c, s in scores.items()}}
        }

    say(f"clustering into {k} interest clusters")
    model = _kmeans(k, n, options.seed)
    assignment = model.fit_predict(vectors)
    centroids = model.cluster_centers_.astype(np.float32)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)

    # time segments: equal spans between the first and last timestamp
    ts = np.asarray(stamps)
    timed = ~np.isnan(ts)
    segments: list[float] = []
    if timed.any() and options.segments > 0:
        lo, hi = float(ts[timed].min()), float(ts[timed].max())
        segments = list(np.linspace(lo, hi + 1e-6, options.segments + 1))
    seg_index = np.full(n, -1)
    if segments:
        seg_index[timed] = np.clip(np.searchsorted(segments, ts[timed], side="right") - 1, 0, options.segments - 1)
    seg_totals = np.bincount(seg_index[seg_index >= 0], minlength=max(options.segments, 1)) if segments else np.zeros(0)

    say("describing clusters")
    members: list[np.ndarray] = [np.flatnonzero(assignment == c) for c in range(k)]
    keywords = _keywords([[texts[i] for i in idx] for idx in members])
    rating_arr = np.asarray(ratings)
    clusters: list[Cluster] = []
    for c, idx in enumerate(members):
        cluster_users = {users[i] for i in idx}
        item_users: dict[str, set[str]] = defaultdict(set)
        for i in idx:
            if items[i]:
                item_users[str(items[i])].add(users[i])
        # privacy: an item or a rating mean is shown only when at least min_users people stand behind it
        shared = ((it, len(us)) for it, us in item_users.items() if len(us) >= options.min_users)
        top_items = sorted(shared, key=lambda kv: (-kv[1], kv[0]))[:5]
        rated_mask = ~np.isnan(rating_arr[idx])
        raters = {users[i] for i in idx[rated_mask]}
        rated = rating_arr[idx][rated_mask] if len(raters) >= options.min_users else np.zeros(0)
        label_counts = Counter(labels[i] for i in idx if labels[i])
        order = idx[np.argsort(-(vectors[idx] @ centroids[c]))] if len(idx) else idx
        examples, seen = [], set()
        for i in order:
            if users[i] not in seen:
                examples.append(texts[i][:240])
                seen.add(users[i])
            if len(examples) == 3:
                break
        trend: list[float] = []
        if segments:
            counts = np.bincount(seg_index[idx][seg_index[idx] >= 0], minlength=options.segments)
            trend = [round(float(cnt / tot), 4) if tot else 0.0 for cnt, tot in zip(counts, seg_totals, strict=True)]
        clusters.append(
            Cluster(
                id=c,
                size=len(idx),
                users=len(cluster_users),
                keywords=keywords[c],
                top_items=top_items,
                rating_mean=round(float(rated.mean()), 3) if len(rated) else None,
                rating_count=len(rated),
                labels=dict(label_counts.most_common(10)),
                examples=examples,
                trend=trend,
                private=len(cluster_users) < options.min_users,
            )
        )

    say("profiling users")
    by_user: dict[str, list[int]] = defaultdict(list)
    for i, user in enumerate(users):
        by_user[user].append(i)
    profiles: dict[str, UserProfile] = {}
    for user, own in by_user.items():
        counts = np.bincount(assignment[own], minlength=k).astype(np.float64)
        shares = counts / counts.sum()
        dist = {int(c): round(float(s), 4) for c, s in enumerate(shares) if s > 0}
        user_ratings = rating_arr[own][~np.isnan(rating_arr[own])]
        profiles[user] = UserProfile(
            user=user,
            history=len(own),
            distribution=dist,
            diversity=round(_entropy(shares, k), 4),
            dominant=_dominant(dist),
            community=None,
            rating_mean=round(float(user_ratings.mean()), 3) if len(user_ratings) else None,
        )

    say("grouping users into communities")
    placed = [u for u, p in profiles.items() if p.history >= MIN_HISTORY_FOR_COMMUNITY]
    communities: list[Community] = []
    community_centroids = np.zeros((0, k), dtype=np.float32)
    if placed:
        matrix = np.zeros((len(placed), k), dtype=np.float32)
        for row, user in enumerate(placed):
            for cid, share in profiles[user].distribution.items():
                matrix[row, cid] = share
        if options.communities is not None:
            n_comm = max(1, min(options.communities, len(placed)))
            selection["communities"] = {"method": "forced", "c": n_comm}
        else:
            comm_scores: dict[int, float] = {}
            for c_try in range(2, min(16, len(placed) // 3) + 1):
                lab = KMeans(n_clusters=c_try, random_state=options.seed, n_init=4).fit_predict(matrix)
                if len(set(lab)) > 1:
                    comm_scores[c_try] = float(silhouette_score(matrix, lab, metric="cosine"))
            n_comm = max(comm_scores, key=lambda c: comm_scores[c]) if comm_scores else 1
            selection["communities"] = {
                "method": "silhouette",
                "c": n_comm,
                "scores": {str(c): round(s, 4) for c, s in comm_scores.items()},
            }
        km = KMeans(n_clusters=n_comm, random_state=options.seed, n_init=4).fit(matrix)
        community_centroids = km.cluster_centers_.astype(np.float32)
        for cid in range(n_comm):
            rows = np.flatnonzero(km.labels_ == cid)
            mean = matrix[rows].mean(axis=0) if len(rows) else np.zeros(k)
            top = [(int(c), round(float(mean[c]), 4)) for c in np.argsort(-mean)[:3] if mean[c] > 0]
            communities.append(Community(id=cid, size=len(rows), top_clusters=top))
            for member in rows:
                profiles[placed[int(member)]].community = cid

    rated_all = rating_arr[~np.isnan(rating_arr)]
    memory = GlobalMemory(
        version=_new_version(),
        built_at=time.time(),
        embedder=embedder_id,
        options=asdict(options),
        records=n,
        clusters=clusters,
        users=profiles,
        communities=communities,
        segments=[float(s) for s in segments],
        rating_range=(float(rated_all.min()), float(rated_all.max())) if len(rated_all) else None,
        selection={**selection, "seconds": round(time.time() - started, 2)},
        centroids=centroids,
        community_centroids=community_centroids,
    )
    say("saving")
    save(memory, home)
    return memory


# ------------------------------------------------------------------------------------------- persistence


def _new_version() -> str:
    """Sortable by time, unique across processes and across builds within one second."""
    now = time.time()
    return f"v{time.strftime('%Y%m%dT%H%M%S', time.gmtime(now))}.{int(now * 1e6) % 1_000_000:06d}-{os.getpid()}"


def _to_json(memory: GlobalMemory) -> bytes:
    payload = asdict(memory)
    payload.pop("centroids")
    payload.pop("community_centroids")
    payload["format"] = FORMAT_VERSION
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


def save(memory: GlobalMemory, home: Path) -> Path:
    """Write a new version folder, then atomically repoint CURRENT at it; prune old versions."""
    home.mkdir(parents=True, exist_ok=True)
    final = home / memory.version
    tmp = home / f".tmp-{memory.version}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    (tmp / "memory.json").write_bytes(_to_json(memory))
    np.save(tmp / "centroids.npy", memory.centroids)
    np.save(tmp / "community_centroids.npy", memory.community_centroids)
    for f in tmp.iterdir():
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
    os.replace(tmp, final)
    pointer_tmp = home / f".{POINTER}.tmp"
    pointer_tmp.write_text(memory.version)
    with pointer_tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(pointer_tmp, home / POINTER)
    versions = sorted(p for p in home.iterdir() if p.is_dir() and p.name.startswith("v"))
    for old in versions:
        if old.name != memory.version and old not in versions[-KEEP_VERSIONS:]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def exists(home: Path) -> bool:
    return (home / POINTER).is_file()


def load(home: Path) -> GlobalMemory:
    pointer = home / POINTER
    if not pointer.is_file():
        raise GlobalMemoryMissing()
    folder = home / pointer.read_text().strip()
    try:
        data = orjson.loads((folder / "memory.json").read_bytes())
        centroids = np.load(folder / "centroids.npy")
        community_centroids = np.load(folder / "community_centroids.npy")
    except (OSError, orjson.JSONDecodeError, ValueError) as exc:
        raise StoreError(f"{folder}: global memory is unreadable: {exc}", "Run `logo build-global` again.") from exc
    if data.get("format", 0) > FORMAT_VERSION:
        raise StoreError(f"{folder}: global memory from a newer logo.", "Upgrade logo or rebuild it.")
    return GlobalMemory(
        version=data["version"],
        built_at=data["built_at"],
        embedder=data["embedder"],
        options=data["options"],
        records=data["records"],
        clusters=[Cluster(**{**c, "top_items": [tuple(t) for t in c["top_items"]]}) for c in data["clusters"]],
        users={
            u: UserProfile(**{**p, "distribution": {int(c): s for c, s in p["distribution"].items()}})
            for u, p in data["users"].items()
        },
        communities=[
            Community(**{**c, "top_clusters": [tuple(t) for t in c["top_clusters"]]}) for c in data["communities"]
        ],
        segments=data["segments"],
        rating_range=tuple(data["rating_range"]) if data["rating_range"] else None,
        selection=data.get("selection", {}),
        centroids=centroids,
        community_centroids=community_centroids,
    )
