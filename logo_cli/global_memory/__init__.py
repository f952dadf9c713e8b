"""Global memory: what the whole population shares, found by clustering everybody's history.

`model` holds its data model, the queries the mediator makes and the as-of-time view; `versions` saves and
loads it as atomic versions; `build` computes it from the store, running the stages of `stages` (sample,
fit, vocabulary, communities, drift) and of `records` (the one pass over the store and what comes of it).

This package re-exports the model and persistence, so `from logo_cli import global_memory` then
`global_memory.load(home)` reads it; it imports nothing heavier than numpy and orjson (the build's
modules are imported by name, where they are needed).
"""

from .model import (
    MIN_HISTORY_FOR_COMMUNITY,
    Cluster,
    Community,
    GlobalMemory,
    ItemNeighbours,
    ItemSnapshot,
    ItemTable,
    Timeline,
    UserProfile,
    dominant,
    entropy,
    profile_from_counts,
)
from .versions import FORMAT_VERSION, KEEP_VERSIONS, POINTER, exists, load, new_version, save

__all__ = [
    "FORMAT_VERSION",
    "KEEP_VERSIONS",
    "MIN_HISTORY_FOR_COMMUNITY",
    "POINTER",
    "Cluster",
    "Community",
    "GlobalMemory",
    "ItemNeighbours",
    "ItemSnapshot",
    "ItemTable",
    "Timeline",
    "UserProfile",
    "dominant",
    "entropy",
    "exists",
    "load",
    "new_version",
    "profile_from_counts",
    "save",
]
