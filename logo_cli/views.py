"""Read-only views of memory for people and scripts: cluster rows, a user's profile, the 2-D cluster map."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from . import global_memory
from .config import Settings
from .embed import load_embedder
from .errors import NotFound, UsageError
from .global_memory import Cluster, GlobalMemory
from .global_memory.model import Community
from .local_memory.store import store_for
from .mediator import MediatorOptions, classify
from .records import format_time

SPARK = "▁▂▃▄▅▆▇█"


def load_memory(settings: Settings, at: float | None = None) -> GlobalMemory:
    memory = global_memory.load(settings.global_dir)
    return memory.as_of(at) if at is not None else memory


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    top = max(values) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))] for v in values)


def trend_word(values: list[float]) -> str:
    """rising / fading / steady, from the last segment against the mean of the earlier ones."""
    if len(values) < 2 or not any(values):
        return ""
    before = float(np.mean(values[:-1]))
    if values[-1] > before * 1.25:
        return "rising"
    if values[-1] < before * 0.8:
        return "fading"
    return "steady"


def cluster_community(memory: GlobalMemory) -> dict[int, int]:
    """Each cluster's community: the one whose members give it the largest mean share."""
    if not len(memory.community_centroids):
        return {}
    return {c: int(np.argmax(memory.community_centroids[:, c])) for c in range(len(memory.clusters))}


def cluster_row(cluster: Cluster, community: int | None = None) -> dict[str, Any]:
    row = asdict(cluster)
    row["examples"] = []  # people's own sentences: the version folder keeps them for the operator, no view shows them
    row["top_items"] = [{"item": item, "users": users} for item, users in cluster.top_items]
    row["trend_word"] = trend_word(cluster.trend)
    row["community"] = community
    return row


def privacy_ledger(settings: Settings, memory: GlobalMemory) -> dict[str, Any]:
    """`logo global --ledger`: the budget and every release. An exact version shows the ledger of the release it
    holds for the next private build (the exact build its last entry), so what was spent stays readable."""
    summary = memory.privacy()
    if summary.get("exact"):
        held = global_memory.versions.continued_release(settings.global_dir)
        if held is not None:
            summary |= {"epsilon_spent": "inf", "ledger": held.ledger}
    return summary


def cluster_rows(memory: GlobalMemory, cluster_id: int | None = None) -> list[dict[str, Any]]:
    owners = cluster_community(memory)
    epsilon = memory.privacy(brief=True)["epsilon"]  # "inf" when the statistics are exact
    if cluster_id is not None:
        if not 0 <= cluster_id < len(memory.clusters):
            raise NotFound(f"No cluster {cluster_id}: there are {len(memory.clusters)} (0-{len(memory.clusters) - 1}).")
        return [cluster_row(memory.clusters[cluster_id], owners.get(cluster_id)) | {"epsilon": epsilon}]
    return [cluster_row(c, owners.get(c.id)) | {"epsilon": epsilon} for c in memory.clusters]


def profile_view(settings: Settings, user: str, at: float | None, options: MediatorOptions) -> dict[str, Any]:
    """A user's profile as global memory sees it, recomputed from the store for --at or newer users."""
    memory = load_memory(settings, at)
    profile = memory.users.get(user) if at is None else None
    embedder = load_embedder(settings.embedder_spec())
    store = store_for(settings)
    history = 0
    if store.exists():
        records, vectors = store.open(embedder.id, embedder.dim, create=False).user_history(user, at)
        history = len(vectors)
        if profile is None or profile.history != history:
            profile = memory.profile_from_vectors(user, vectors, [r.rating for r in records if r.rating is not None])
    if profile is None:
        before = f" before {format_time(at)}" if at is not None else ""
        raise NotFound(
            f"No records for user {user!r}{before}.",
            ("A later --at may find some; " if at is not None else "")
            + "`logo users` lists the users in the store; a user with no history is a cold-start user at ask time.",
        )
    cold_start, biased = classify(history, profile.diversity, options)
    community = memory.communities[profile.community] if profile.community is not None else None
    return {
        "user": user,
        "at": format_time(at) if at is not None else None,
        "history": history,
        "diversity": profile.diversity,
        "cold_start": cold_start,
        "biased": biased,
        "thresholds": {
            "cold_start_max": options.cold_start_max,
            "biased_min_history": options.biased_min_history,
            "biased_max_diversity": options.biased_max_diversity,
        },
        "rating_mean": profile.rating_mean,
        "dominant": [
            {"cluster": c, "share": profile.distribution.get(c, 0.0), "keywords": memory.clusters[c].keywords[:5]}
            for c in profile.dominant
        ],
        "distribution": profile.distribution,
        "community": (
            {
                "id": community.id,
                "size": community.size,
                "top_clusters": community_tops(memory, community),
            }
            if community
            else None
        ),
        "global_version": memory.version,
    }


def community_tops(memory: GlobalMemory, community: Community) -> list[dict[str, Any]]:
    """The clusters a community's members favour, exact means over the members: in a community of two, one
    member's own profile and the mean gave the other's (found by a helper playing attacker), and the order alone
    says which clusters the other favours. Under privacy, none (the mediator still steers by them, as by the
    other fitted figures privacy.md names)."""
    if memory.release is not None:
        return []
    return [
        {"cluster": c, "share": share, "keywords": memory.clusters[c].keywords[:4]}
        for c, share in community.top_clusters
    ]


def plot_map(memory: GlobalMemory, path: Path) -> Path:
    """Clusters as a 2-D map: centroids projected by PCA, bubbles sized by users, coloured by community."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(memory.clusters) < 2:
        raise UsageError("A map needs at least 2 clusters.")
    centred = memory.centroids - memory.centroids.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    owners = cluster_community(memory)
    colours = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(10, 7.5), dpi=110)
    largest = max(c.users for c in memory.clusters) or 1
    for c in memory.clusters:
        size = 300 + 2700 * c.users / largest
        colour = colours(owners.get(c.id, 0) % 20)
        ax.scatter(
            xy[c.id, 0],
            xy[c.id, 1],
            s=size,
            color=colour,
            alpha=0.45 if not c.private else 0.15,
            edgecolors="black",
            linewidths=0.6,
        )
        label = f"#{c.id} " + ", ".join(c.keywords[:3]) if not c.private else f"#{c.id} (private)"
        ax.annotate(f"{label}\n{c.users} users", (xy[c.id, 0], xy[c.id, 1]), ha="center", va="center", fontsize=8)
    shown = set(owners.values())
    for community in (c for c in memory.communities if c.id in shown):
        ax.scatter(
            [],
            [],
            color=colours(community.id % 20),
            alpha=0.6,
            s=80,
            label=f"community {community.id} ({community.size} user{'s' if community.size != 1 else ''})",
        )
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.set_title(f"logo global memory: {len(memory.clusters)} interest clusters, {memory.records} records")
    ax.set_xlabel("first principal axis of the cluster centroids")
    ax.set_ylabel("second principal axis")
    ax.margins(0.15)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
