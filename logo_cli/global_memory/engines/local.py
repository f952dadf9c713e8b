"""The local engine: global memory from a snapshot in one process, in streaming passes (bounded memory).

1. sample: the fit sample read by position (`stages.draw_sample`: the whole store when small);
2. fit: k by silhouette on its subsample, k-means on the sample (`stages.fit_centroids`), unless --update
   keeps the previous centroids;
3. vocabulary: each cluster's keyword candidates, c-TF-IDF over the fit sample's texts
   (`stages.keyword_candidates`);
4. assign: one pass over the snapshot in batches (`records.assign_records`): each record's cluster and fields
   as scalars (32 bytes a record), statistics accumulated per batch, and the people of its cluster's keyword
   candidates (`records.KeywordPeople`: over every record, not the fit sample, so given the clusters and
   candidates one record moves them by at most 2); vectors are never all in memory;
5-8. timeline, items, clusters, profiles from those arrays (`records`);
9-10. communities and drift (`stages`).
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np

from .. import versions
from ..model import GlobalMemory
from ..records import (
    KeywordPeople,
    assign_records,
    build_items,
    build_timeline,
    describe_clusters,
    fill_item_communities,
    profile_users,
    time_segments,
)
from ..snapshot import Snapshot
from ..stages import (
    BuildOptions,
    Kept,
    Say,
    draw_sample,
    fit_centroids,
    group_communities,
    keyword_candidates,
    measure_drift,
    ratings_scale,
)


def build(snapshot: Snapshot, options: BuildOptions, kept: Kept | None, say: Say) -> GlobalMemory:
    started = time.time()
    total = snapshot.count
    sample = draw_sample(snapshot, options.seed, say)
    fit = kept.fit if kept is not None else fit_centroids(sample, total, options, say)
    candidates = keyword_candidates(sample, fit.centroids)
    texts = dict(zip(sample.uids, sample.texts, strict=True))
    del sample  # the pass below reads the whole snapshot: hold only the fit sample's texts meanwhile

    say("assigning records to clusters")
    people = KeywordPeople(candidates.words, candidates.token_pattern)
    records = assign_records(snapshot, fit.centroids, texts, people)
    del texts
    keywords = people.kept(options.min_users)
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
    rated = ~np.isnan(records.rating)
    pairs = np.unique(np.stack([records.rating[rated], records.user[rated].astype(np.float64)]), axis=1)
    values, givers = np.unique(pairs[0], return_counts=True)  # each rating value and the people who gave it
    scale_range, scale_step = ratings_scale(values, givers, options.min_users)
    return GlobalMemory(
        version=versions.new_version(),
        built_at=time.time(),
        data_at=float(snapshot.stamp.get("written_at", 0.0)),
        embedder=str(snapshot.stamp["embedder"]),
        options=asdict(options),
        records=records.n,
        clusters=clusters,
        users=profiles,
        communities=grouped.communities,
        segments=segments,
        rating_range=scale_range,
        rating_step=scale_step,
        selection={**selection, "engine": "local", "seconds": round(time.time() - started, 2)},
        drift=drift,
        centroids=fit.centroids,
        community_centroids=grouped.centroids,
        timeline=timeline,
        items=items,
    )
