"""The stages of the global memory build that work on a sample of the store or on the users' cluster counts
(`build` runs them, see its docstring): 1. sample (`draw_sample`), 2. fit (`fit_centroids`, k by
`silhouette_search`), 3. vocabulary (`keyword_candidates`), 9. communities (`group_communities`) and 10. drift
(`measure_drift`), with the options the build takes (`BuildOptions`) and what the stages hand on (`Fit`,
`Baseline`). sklearn and scipy are imported inside the functions that use them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from .model import MIN_HISTORY_FOR_COMMUNITY, Community
from .records import unit_rows
from .release import DEFAULT_EPSILON
from .snapshot import Snapshot

FULL_KMEANS_MAX = 50_000  # below this, exact k-means on all vectors is affordable and finds better optima
SAMPLE_SIZE = 4_000
FIT_SAMPLE = 50_000  # large stores: centroids and keyword candidates from this many random records (>= 780 per cluster)
VOCABULARY = 20_000
KEYWORD_CANDIDATES = 20  # per cluster: the best c-TF-IDF words, whose people are counted (and, private, released)
# words people use about anything: they say nothing about a cluster's topic
_GENERIC = """like just really time good best great year years day days week weeks hours hour got get took use
used make made new old first last still way thing things lot bit pretty actually maybe much better little love
loved want went going think know need tried try says said finally today tonight yesterday ago minutes away right
long big small nice fine okay sure kind"""
GENERIC_WORDS = frozenset(_GENERIC.split())
DRIFT_ADVICE = 0.02  # a drop in mean similarity to centroids beyond this suggests a full rebuild
NEW_SHARE_ADVICE = 0.25  # so does this share of records added since the last full build
MAX_COMMUNITIES = 16
COMMUNITY_SILHOUETTE_SAMPLE = 3000

Say = Callable[[str], None]


@dataclass
class BuildOptions:
    clusters: int | None = None  # None: choose k by silhouette
    communities: int | None = None  # None: choose by silhouette
    seed: int = 0
    min_users: int = 3
    segments: int = 4
    page_size: int = 5000
    update: bool = False  # keep the previous clusters, refresh every statistic
    epsilon: float | None = DEFAULT_EPSILON  # differential privacy budget per record; None: inf (exact)
    # the periods population statistics are released in; None: the last release's, else the default
    period_days: float | None = None

    @property
    def exact(self) -> bool:
        """--epsilon inf: the statistics are released exact (research only)."""
        return self.epsilon is None or math.isinf(self.epsilon)


@dataclass
class Fit:
    """Unit centroids of the interest clusters, and how their number was chosen (as memory.json keeps it)."""

    centroids: np.ndarray  # k x dim
    selection: dict[str, Any]


@dataclass
class Baseline:
    """The mean similarity of records to their centroids, and the records, at the last full build."""

    similarity: float | None  # None in memories from before it was kept: the new build's own is used
    records: int


@dataclass
class Kept:
    """What `--update` keeps from the previous build, and so the whole difference from a full build: the fit
    stage is skipped (these centroids), communities are assigned to these community centroids instead of
    chosen (when the previous build had any), and drift is measured against this baseline."""

    fit: Fit
    community_centroids: np.ndarray | None
    baseline: Baseline


# ------------------------------------------------------------------------------------- 1. sample, 2. fit


@dataclass
class FitSample:
    """The records the clusters are fitted on (the whole store when `whole`), and `rows`, the subsample of them
    that chooses k and the keyword vocabulary."""

    uids: list[str]
    texts: list[str]
    vectors: np.ndarray
    rows: np.ndarray
    whole: bool
    users: list[str] | None = None  # whose each record is (None: each record its own person)

    @property
    def subsample(self) -> np.ndarray:
        out: np.ndarray = self.vectors[self.rows]
        return out

    @property
    def subsample_texts(self) -> list[str]:
        return [self.texts[i] for i in self.rows]


def sample_plan(total: int, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Which records the clusters are fitted on, by position in the store's order: all of a small store
    (`whole`: exact k-means, keywords from every text), else FIT_SAMPLE drawn with the build's seed; and the
    SAMPLE_SIZE rows of that sample that choose k and the keyword vocabulary. Both engines fit on these."""
    rng = np.random.default_rng(seed)
    whole = total <= FULL_KMEANS_MAX
    if whole:
        positions = np.arange(total, dtype=np.int64)
    else:
        positions = np.sort(rng.choice(total, min(total, FIT_SAMPLE), replace=False))
    rows = np.sort(rng.choice(len(positions), min(len(positions), SAMPLE_SIZE), replace=False))
    return positions, rows, whole


def draw_sample(snapshot: Snapshot, seed: int, say: Say) -> FitSample:
    """The fit sample (`sample_plan`), read from the snapshot by position in one pass."""
    positions, rows, whole = sample_plan(snapshot.count, seed)
    say(f"reading {snapshot.count} records" if whole else f"sampling {len(positions)} of {snapshot.count} records")
    fit = snapshot.take(positions)
    users = [fit.user_names[u] for u in fit.user]
    return FitSample(fit.uids, fit.embedding_texts(), fit.vectors, rows, whole, users)


def silhouette_search(
    x: np.ndarray,
    candidates: Iterable[int],
    seed: int,
    *,
    n_init: int,
    sample_size: int | None = None,
    minibatch_above: int | None = None,
) -> tuple[int, dict[int, float]]:
    """The number of groups among `candidates` whose k-means labels have the best cosine silhouette on `x`
    (1 when none splits it), and every candidate's score. Interest clusters and communities both choose their
    number with it, each with its own candidates and k-means settings: `n_init` starts, mini-batch k-means
    when `x` has more than `minibatch_above` rows, silhouette on `sample_size` random rows (all when None)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import silhouette_score

    scores: dict[int, float] = {}
    for k in candidates:
        if k < 2 or k >= len(x):
            continue
        if minibatch_above is not None and len(x) > minibatch_above:
            model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=n_init, batch_size=4096)
        else:
            model = KMeans(n_clusters=k, random_state=seed, n_init=n_init)
        labels = model.fit_predict(x)
        if len(set(labels)) > 1:
            score = silhouette_score(x, labels, metric="cosine", sample_size=sample_size, random_state=seed)
            scores[k] = float(score)
    if not scores:
        return 1, {}
    return max(scores, key=lambda k: scores[k]), scores


def k_candidates(n: int) -> list[int]:
    upper = max(2, min(64, int(math.sqrt(n / 2)) * 2))
    return [k for k in (2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64) if k <= upper]


def choose_k(x: np.ndarray, candidates: Sequence[int], seed: int) -> tuple[int, dict[int, float]]:
    """The k with the best cosine silhouette on the sample (vectors are unit length). One k-means++ start is
    enough to compare k's, and 4x cheaper than the final fit's."""
    return silhouette_search(x, candidates, seed, n_init=1, minibatch_above=FULL_KMEANS_MAX)


def community_candidates(n: int) -> list[int]:
    return list(range(2, min(MAX_COMMUNITIES, n // 3) + 1))


def _scores(scores: dict[int, float]) -> dict[str, float]:
    return {str(c): round(s, 4) for c, s in scores.items()}


def forced_k(options: BuildOptions, total: int) -> tuple[int, dict[str, Any]] | None:
    """--clusters, checked against the number of records, and its selection record; None when k is chosen."""
    if options.clusters is None:
        return None
    if not 1 <= options.clusters <= total:
        raise UsageError(f"--clusters must be between 1 and the number of records ({total}).")
    return options.clusters, {"clusters": {"method": "forced", "k": options.clusters}}


def fit_centroids(sample: FitSample, total: int, options: BuildOptions, say: Say) -> Fit:
    """k forced or chosen by silhouette, and the k-means centroids of the fit sample."""
    forced = forced_k(options, total)
    if forced is not None:
        k, selection = forced
    else:
        say("choosing the number of clusters")
        k, scores = choose_k(sample.subsample, k_candidates(total), options.seed)
        selection = {
            "clusters": {"method": "silhouette", "k": k, "sample": len(sample.rows), "scores": _scores(scores)}
        }
    say(f"clustering {total} records into {k} interest clusters")
    return Fit(_kmeans_centroids(sample.vectors, sample.subsample, k, options.seed, exact=sample.whole), selection)


def _kmeans_centroids(vectors: np.ndarray, sample: np.ndarray, k: int, seed: int, exact: bool) -> np.ndarray:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if exact:
        return unit_rows(KMeans(n_clusters=k, random_state=seed, n_init=4).fit(vectors).cluster_centers_)
    # large stores: seed from the sample (k-means++ on a random sample avoids the store's insertion order),
    # then refine on the random fit sample
    init = KMeans(n_clusters=k, random_state=seed, n_init=2).fit(sample).cluster_centers_
    model = MiniBatchKMeans(n_clusters=k, init=init, n_init=1, random_state=seed, batch_size=4096)
    for start in range(0, len(vectors), 4096):
        model.partial_fit(vectors[start : start + 4096])
    return unit_rows(model.cluster_centers_)


# ------------------------------------------------------------------------------------------ 3. vocabulary


@dataclass
class KeywordCandidates:
    """Each cluster's candidate keywords in c-TF-IDF order, and the token pattern that finds them in a text
    (lowercased, as the vectorizer read it)."""

    words: list[list[str]]
    token_pattern: str


def keyword_candidates(sample: FitSample, centroids: np.ndarray) -> KeywordCandidates:
    """Each cluster's KEYWORD_CANDIDATES best words by class-based TF-IDF over the fit sample's texts (every
    text of a small store), each text counted in its nearest cluster, with a vocabulary learnt from the
    subsample. Their people are counted over every record (`KeywordPeople`)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    vectorizer = CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | GENERIC_WORDS),
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b",
        max_features=VOCABULARY,
    )
    texts = sample.subsample_texts
    try:
        vectorizer.fit(texts)
    except ValueError:  # only stop words in the sample
        vectorizer = CountVectorizer(token_pattern=r"(?u)\b\w+\b").fit([*texts, "empty"])
    counts = _keyword_counts(vectorizer, sample.texts, _nearest(sample.vectors, centroids), len(centroids))
    words = _keywords(counts, vectorizer.get_feature_names_out(), KEYWORD_CANDIDATES)
    return KeywordCandidates(words, str(vectorizer.token_pattern))


def _nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    if not len(vectors):
        return np.zeros(0, dtype=np.int64)
    out: np.ndarray = np.argmax(vectors @ centroids.T, axis=1)
    return out


def _keyword_counts(vectorizer: Any, texts: list[str], assigned: np.ndarray, k: int) -> Any:
    """k x vocabulary word counts of the texts, each text counted in its `assigned` cluster."""
    from scipy import sparse

    onehot = sparse.csr_matrix((np.ones(len(assigned)), (assigned, np.arange(len(assigned)))), shape=(k, len(assigned)))
    return onehot @ vectorizer.transform(texts)


def _keywords(counts: Any, vocabulary: np.ndarray, top: int) -> list[list[str]]:
    """Class-based TF-IDF (as in BERTopic): frequent in one cluster, rare overall. Ties go alphabetically (the
    vocabulary's order), as in the Spark engine."""
    if counts is None or counts.shape[1] == 0:
        return [[] for _ in range(counts.shape[0] if counts is not None else 0)]
    dense = counts.toarray().astype(np.float64)
    tf = dense / np.maximum(dense.sum(axis=1, keepdims=True), 1)
    idf = np.log(1.0 + (dense.sum() / max(len(dense), 1)) / np.maximum(dense.sum(axis=0), 1))
    scores = tf * idf
    return [[str(vocabulary[i]) for i in np.argsort(-row, kind="stable")[:top] if row[i] > 0] for row in scores]


# --------------------------------------------------------------------------------------- 9. communities


@dataclass
class Communities:
    communities: list[Community]
    centroids: np.ndarray  # communities x k: each one's mean cluster distribution
    member: np.ndarray  # per user: their community, -1 for users with too short a history to place
    selection: dict[str, Any] | None  # how their number was chosen; None when kept or nobody was placed


def group_communities(
    user_counts: np.ndarray, seed: int, forced: int | None = None, kept: np.ndarray | None = None
) -> Communities:
    """Users with at least MIN_HISTORY_FOR_COMMUNITY records, grouped by k-means over their cluster
    distributions: into `forced` communities, or as many as silhouette chooses, or assigned to the nearest
    of the `kept` community centroids (cosine)."""
    from sklearn.cluster import KMeans

    k = user_counts.shape[1]
    member = np.full(len(user_counts), -1, dtype=np.int32)
    placed = placed_users(user_counts)
    if not len(placed):
        return Communities([], np.zeros((0, k), dtype=np.float32), member, None)
    matrix = user_counts[placed] / np.maximum(user_counts[placed].sum(axis=1, keepdims=True), 1)
    selection: dict[str, Any] | None = None
    if kept is not None:
        centroids = kept
        unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-9)
        labels = np.argmax(unit_rows(matrix.astype(np.float32)) @ unit.T, axis=1)
        n_comm = len(centroids)
    else:
        if forced is not None:
            n_comm = max(1, min(forced, len(placed)))
            selection = {"method": "forced", "c": n_comm}
        else:
            n_comm, scores = silhouette_search(
                matrix,
                community_candidates(len(placed)),
                seed,
                n_init=4,
                sample_size=min(len(matrix), COMMUNITY_SILHOUETTE_SAMPLE),
            )
            selection = {"method": "silhouette", "c": n_comm, "scores": _scores(scores)}
        km = KMeans(n_clusters=n_comm, random_state=seed, n_init=4).fit(matrix)
        centroids, labels = km.cluster_centers_.astype(np.float32), km.labels_
    return communities_from(user_counts, placed, labels, centroids, selection)


def placed_users(user_counts: np.ndarray) -> np.ndarray:
    """The users with enough history to be placed in a community (rows of `user_counts`)."""
    out: np.ndarray = np.flatnonzero(user_counts.sum(axis=1) >= MIN_HISTORY_FOR_COMMUNITY)
    return out


def communities_from(
    user_counts: np.ndarray,
    placed: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray,
    selection: dict[str, Any] | None,
) -> Communities:
    """Communities from each placed user's label (both engines): sizes, top clusters, every user's community."""
    k = user_counts.shape[1]
    member = np.full(len(user_counts), -1, dtype=np.int32)
    matrix = user_counts[placed] / np.maximum(user_counts[placed].sum(axis=1, keepdims=True), 1)
    communities = []
    for cid in range(len(centroids)):
        members = np.flatnonzero(labels == cid)
        mean_share = matrix[members].mean(axis=0) if len(members) else np.zeros(k)
        top = [(int(c), round(float(mean_share[c]), 4)) for c in np.argsort(-mean_share)[:3] if mean_share[c] > 0]
        communities.append(Community(id=cid, size=len(members), top_clusters=top))
        member[placed[members]] = cid
    return Communities(communities, centroids.astype(np.float32), member, selection)


# --------------------------------------------------------------------------------------------- 10. drift


def measure_drift(similarity_sum: float, n: int, baseline: Baseline | None) -> dict[str, Any]:
    """The records' mean similarity to their centroids; after an update, its drop since the last full build
    and the share of records added since, either of which past its threshold advises a full rebuild."""
    mean_similarity = round(similarity_sum / max(n, 1), 4)
    drift: dict[str, Any] = {"mean_similarity": mean_similarity}
    if baseline is None:
        return drift | {"baseline_similarity": mean_similarity, "baseline_records": n, "rebuild_advised": False}
    base = baseline.similarity if baseline.similarity is not None else mean_similarity
    new_share = max(0, n - baseline.records) / max(n, 1)
    drop = round(base - mean_similarity, 4)
    return drift | {
        "baseline_similarity": base,
        "baseline_records": baseline.records,
        "similarity_drop": drop,
        "new_records_share": round(new_share, 4),
        "rebuild_advised": drop > DRIFT_ADVICE or new_share > NEW_SHARE_ADVICE,
    }


def ratings_scale(
    values: np.ndarray, people: np.ndarray, min_users: int
) -> tuple[tuple[float, float] | None, float | None]:
    """(range, step) of the ratings, from the distinct rating values and how many people gave each. A value
    shapes the scale only when at least min_users people gave it: one person's 9 made everyone's answers read
    "4.5/9", and one 4.33 rounded everyone's half stars to whole ones. (A store where no value has that many
    people reads every value.) Ratings outside the range are clipped where figures are summed."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return None, None
    common = values[np.asarray(people) >= min_users]
    kept = common if len(common) else values
    return (float(kept.min()), float(kept.max())), rating_step(kept)


def rating_step(ratings: np.ndarray) -> float | None:
    """The finest step the ratings take: 1 for whole stars, 0.5 for half stars (MovieLens), and so on."""
    if not len(ratings):
        return None
    for step in (1.0, 0.5, 0.25, 0.1):
        if np.allclose(ratings / step, np.round(ratings / step), atol=1e-6):
            return step
    return None
