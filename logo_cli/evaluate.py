"""Measures of how well logo's memories match known structure (the evaluation harness grows here)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from .global_memory import GlobalMemory
from .store import Store


@dataclass
class Agreement:
    nmi: float  # normalized mutual information between clusters and the known classes
    purity: float  # share of records whose cluster's majority class is their own
    clusters: int
    classes: int
    records: int


def cluster_agreement(memory: GlobalMemory, store: Store, meta_key: str) -> Agreement:
    """Compare the clusters with a known class stored in each record's `meta[meta_key]`."""
    from sklearn.metrics import normalized_mutual_info_score

    truth: list[str] = []
    assigned: list[np.ndarray] = []
    for page in store.pages():
        keep = [i for i, r in enumerate(page.records) if meta_key in r.meta]
        truth += [str(page.records[i].meta[meta_key]) for i in keep]
        assigned.append(memory.assign(page.embeddings[keep]) if keep else np.zeros(0, dtype=np.int64))
    labels = np.concatenate(assigned) if assigned else np.zeros(0, dtype=np.int64)
    if not truth:
        return Agreement(0.0, 0.0, len(memory.clusters), 0, 0)
    truth_arr = np.asarray(truth)
    majority = sum(Counter(truth_arr[labels == c]).most_common(1)[0][1] for c in np.unique(labels))
    return Agreement(
        nmi=round(float(normalized_mutual_info_score(truth_arr, labels)), 4),
        purity=round(majority / len(truth), 4),
        clusters=len(memory.clusters),
        classes=len(set(truth)),
        records=len(truth),
    )
