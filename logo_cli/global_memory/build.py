"""Building global memory from the store, as named stages, in passes over pages of records so memory stays
bounded. Each stage is a function that takes what it needs and returns a typed result; `_build` runs them:

1. sample (`draw_sample`): the fit sample, the whole store when it is small, else FIT_SAMPLE random records
   fetched by id (the build reads the whole store only once, in step 4), and its SAMPLE_SIZE subsample;
2. fit (`fit_centroids`): k by cosine silhouette on the subsample (`silhouette_search`), then exact k-means
   when the store is small, else mini-batch k-means seeded from the subsample and refined on the fit sample;
3. vocabulary (`learn_keywords`): each cluster's keywords, class-based TF-IDF over the fit sample's texts;
4. assign (`assign_records`): one pass over ids, metadata and vectors (no text): every record to its nearest
   centroid, as per-record scalars (`Records`: cluster, user, item, label, time, rating); vectors are not kept;
5. timeline (`build_timeline`): per-cluster arrays sorted by time, from which any as-of view is recomputed;
6. items (`build_items`): the item table, with each item's terms; its users' communities are filled in by
   `fill_item_communities` once communities exist;
7. clusters (`describe_clusters`): sizes, users, keywords, shared items, ratings, labels, examples, trends;
8. profiles (`profile_users`): each user's distribution over clusters, diversity and rating mean;
9. communities (`group_communities`): users grouped by their distributions (number by `silhouette_search`);
10. drift (`measure_drift`): mean similarity to the centroids, against the last full build's.

Stages 1-3, 9 and 10 live in `stages`; stages 4-8 work on the pass's per-record arrays and live in
`records`.

`--update` (`BuildOptions.update`) differs from a full build only through `Kept`, what it keeps from the
previous build: its centroids (step 2 is skipped), its community centroids (step 9 assigns users to them
instead of choosing them) and its drift baseline (step 10 compares against it).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import GlobalMemoryMissing, StoreError
from ..local_memory.store import Store
from . import versions
from .model import Cluster, GlobalMemory
from .records import (
    assign_records,
    build_items,
    build_timeline,
    describe_clusters,
    fill_item_communities,
    profile_users,
    time_segments,
)
from .stages import (
    Baseline,
    BuildOptions,
    Fit,
    Say,
    draw_sample,
    fit_centroids,
    group_communities,
    learn_keywords,
    measure_drift,
)

__all__ = ["BuildOptions", "Kept", "build_global", "keep_previous"]  # BuildOptions is defined in stages


def build_global(
    store: Store,
    embedder_id: str,
    dim: int,
    home: Path,
    options: BuildOptions,
    progress: Say | None = None,
    describe: Callable[[Cluster], str] | None = None,
) -> GlobalMemory:
    """Build and save a new global memory version (see the module docstring)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # duplicate points (e.g. users with identical distributions) make k-means warn; the result stays valid
        warnings.simplefilter("ignore", ConvergenceWarning)
        say = progress or (lambda _msg: None)
        memory = _build(store, embedder_id, dim, home, options, say)
    finish(memory, say)
    if describe is not None:
        for cluster in memory.clusters:
            if not cluster.private:
                cluster.description = describe(cluster)
    versions.save(memory, home)
    return memory


def finish(memory: GlobalMemory, say: Say) -> None:
    """What every engine's memory gets on the driver, from its item table and profiles: the items'
    collaborative neighbours."""
    from .collaborative import fit_neighbours

    if memory.items is not None:
        say("finding items the same people have")
        memory.neighbours = fit_neighbours(memory.items, None, memory.min_users)


def _build(store: Store, embedder_id: str, dim: int, home: Path, options: BuildOptions, say: Say) -> GlobalMemory:
    started = time.time()
    store.open(embedder_id, dim, create=False)
    total = store.count()
    if total == 0:
        raise StoreError("The store is empty.", "Run `logo ingest FILE.jsonl` first.")
    kept = keep_previous(home, embedder_id) if options.update else None  # all that --update changes

    sample = draw_sample(store, total, options.seed, options.page_size, say)
    fit = kept.fit if kept is not None else fit_centroids(sample, total, options, say)
    keywords = learn_keywords(sample, fit.centroids)
    texts = dict(zip(sample.uids, sample.texts, strict=True))
    del sample  # the pass below reads the whole store: hold only the fit sample's texts meanwhile

    say("assigning records to clusters")
    records = assign_records(store, fit.centroids, options.page_size, texts)
    del texts
    say("describing clusters")
    timeline = build_timeline(records)
    items = build_items(records, options.min_users)
    segments = time_segments(records.ts, options.segments)
    clusters = describe_clusters(records, timeline, keywords, segments, options.min_users)
    say("profiling users")
    profiles = profile_users(records)
    say("grouping users into communities")
    grouped = group_communities(
        records.user_counts, options.seed, options.communities, kept.community_centroids if kept else None
    )
    for name, community in zip(records.user_names, grouped.member, strict=True):
        if community >= 0:
            profiles[name].community = int(community)
    if items is not None:
        fill_item_communities(items, grouped.member)
    drift = measure_drift(records.similarity_sum, records.n, kept.baseline if kept else None)

    selection = {**fit.selection, **({"communities": grouped.selection} if grouped.selection else {})}
    rated = records.rating[~np.isnan(records.rating)]
    return GlobalMemory(
        version=versions.new_version(),
        built_at=time.time(),
        embedder=embedder_id,
        options=asdict(options),
        records=records.n,
        clusters=clusters,
        users=profiles,
        communities=grouped.communities,
        segments=segments,
        rating_range=(float(rated.min()), float(rated.max())) if len(rated) else None,
        rating_step=_rating_step(rated),
        selection={**selection, "seconds": round(time.time() - started, 2)},
        drift=drift,
        centroids=fit.centroids,
        community_centroids=grouped.centroids,
        timeline=timeline,
        items=items,
    )


# ------------------------------------------------------------------------------------ what --update keeps


@dataclass
class Kept:
    """What `--update` keeps from the previous build, and so the whole difference from a full build: the fit
    stage is skipped (these centroids), communities are assigned to these community centroids instead of
    chosen (when the previous build had any), and drift is measured against this baseline."""

    fit: Fit
    community_centroids: np.ndarray | None
    baseline: Baseline


def keep_previous(home: Path, embedder_id: str) -> Kept:
    if not versions.exists(home):
        raise GlobalMemoryMissing()
    previous = versions.load(home)
    if previous.embedder != embedder_id:
        raise StoreError(f"Global memory was built with {previous.embedder}, not {embedder_id}.")
    drift = previous.drift
    return Kept(
        fit=Fit(previous.centroids, {**previous.selection, "update": True}),
        community_centroids=previous.community_centroids if len(previous.community_centroids) else None,
        baseline=Baseline(
            similarity=drift.get("baseline_similarity", drift.get("mean_similarity")),
            records=drift.get("baseline_records", previous.records),
        ),
    )


def _rating_step(ratings: np.ndarray) -> float | None:
    """The finest step the ratings take: 1 for whole stars, 0.5 for half stars (MovieLens), and so on."""
    if not len(ratings):
        return None
    for step in (1.0, 0.5, 0.25, 0.1):
        if np.allclose(ratings / step, np.round(ratings / step), atol=1e-6):
            return step
    return None
