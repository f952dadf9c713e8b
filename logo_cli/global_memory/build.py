"""Building global memory: the orchestrator. It takes a snapshot of the store (`snapshot`: written here from
the store, or one given with --snapshot), hands it to an engine, runs the finishing steps both engines share,
and saves the result as a new version (atomically: `versions.save`).

The stages, in order (each engine runs them its own way; `engines/local.py` and `engines/spark.py`):

1. sample: the fit sample, the whole store when it is small, else FIT_SAMPLE random records read by position
   (`stages.sample_plan`), and its SAMPLE_SIZE subsample;
2. fit: k by cosine silhouette on the subsample, then k-means (exact on a small store, else seeded from the
   subsample and refined on the fit sample);
3. vocabulary: each cluster's keywords, class-based TF-IDF over the fit sample's texts;
4. assign: one pass over every record: its nearest centroid, its fields as scalars; vectors are not kept;
5. timeline: per-cluster arrays sorted by time, from which any as-of view is recomputed;
6. items: the item table (items at least min_users people share), with each item's terms and its users'
   communities;
7. clusters: sizes, users, keywords, shared items, ratings, labels, examples, trends, privacy;
8. profiles: each user's distribution over clusters, diversity and rating mean;
9. communities: users grouped by their distributions (number by silhouette);
10. drift: mean similarity to the centroids, against the last full build's.

Then, on the driver, `finish`: the steps that read the finished memory as a whole (the item table, the
profiles), whichever engine built it; then `versions.save`.

`--update` (`BuildOptions.update`) differs from a full build only through `Kept`, what it keeps from the
previous build: its centroids (step 2 is skipped), its community centroids (step 9 assigns users to them
instead of choosing them) and its drift baseline (step 10 compares against it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import GlobalMemoryMissing, StoreError, UsageError
from ..local_memory.store import Store
from . import release, versions
from .model import Cluster, GlobalMemory
from .snapshot import Snapshot, write_snapshot
from .stages import Baseline, BuildOptions, Fit, Kept, Say

__all__ = ["BuildOptions", "Kept", "build_global", "finish", "keep_previous"]  # BuildOptions is defined in stages


def build_global(
    store: Store | None,
    embedder_id: str,
    dim: int,
    home: Path,
    options: BuildOptions,
    progress: Say | None = None,
    describe: Callable[[Cluster], str] | None = None,
    *,
    engine: str = "local",
    master: str | None = None,
    snapshot: str | None = None,
) -> GlobalMemory:
    """Build and save a new global memory version (see the module docstring). Without `snapshot` (a folder
    `logo snapshot` wrote, or for Spark any path its executors read), the store is snapshotted first into a
    temporary folder beside global memory, removed after the build. A private build charges old records again
    when a `logo forget` marked that records left a period still open (`versions.mark_forget`)."""
    say = progress or (lambda _msg: None)
    if engine not in ("local", "spark"):
        raise UsageError(f"--engine must be local or spark, not {engine}.")
    if master and engine != "spark":
        raise UsageError("--master is for --engine spark.")
    kept = keep_previous(home, embedder_id) if options.update else None  # all that --update changes
    if snapshot is not None and (Path(snapshot) / "stamp.json").is_file():  # (a cluster's path: after the build)
        _refuse_older_snapshot(snapshot, Snapshot(Path(snapshot)).stamp.get("written_at", 0.0), home)
    with _snapshot_for(store, embedder_id, dim, home, snapshot, engine, master, say) as path:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # duplicate points (e.g. users with identical distributions) make k-means warn; the result stays valid
            warnings.simplefilter("ignore", ConvergenceWarning)
            if engine == "spark":
                from .engines import spark

                memory = spark.build(path, embedder_id, dim, options, kept, say, master=master)
            else:
                from .engines import local

                memory = local.build(Snapshot(Path(path)).check(embedder_id, dim), options, kept, say)
    finish(memory, say)
    try:
        previous = versions.continued_release(home)
    except StoreError:
        if not options.exact:
            raise
        say("the privacy release is unreadable: this exact build holds none")  # the way out of a damaged one
        previous = None
    if snapshot is not None:
        _refuse_older_snapshot(snapshot, memory.data_at, home, previous)
    held = None
    period_days = release.chosen_period(options.period_days, previous)
    if not options.exact:
        assert options.epsilon is not None
        say(f"releasing population statistics with differential privacy (epsilon {options.epsilon:g} per record)")
        removed = versions.forget_pending(home)
        memory.release = release.release(
            memory, options.epsilon, period_days, previous, memory.built_at, removed=removed
        )
        memory.users = release.diversity_from_release(memory, memory.release)
    else:  # the exact build showed every record: the ledger keeps it, whether or not a release came before
        continued = previous or release.nothing_released(memory, period_days, memory.built_at)
        held = release.held_by_exact_build(continued, memory.built_at, memory.data_at)
    if describe is not None:
        write_descriptions(memory, describe, say)
    versions.save(memory, home, held=held)
    if not options.exact:  # charged. An exact build read the store after the delete: the records it never
        versions.clear_forget(home)  # showed left the release it holds, which the next private build continues
    return release.apply(memory, memory.release) if memory.release is not None else memory


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "an unknown time"


def _refuse_older_snapshot(
    snapshot: str, written_at: float, home: Path, previous: release.Release | None = None
) -> None:
    """A snapshot written before the records the last build read would take back what was ingested since and bring
    back anyone forgotten since: each a new draw of their figures that no ledger entry pays for. Refused. (A build
    from the store snapshots it now: only a given snapshot can be old.)"""
    if previous is None:
        with contextlib.suppress(StoreError):  # the build says so, after
            previous = versions.continued_release(home) if versions.on_disk(home) else None
    # the last forget counts even when it left nobody and took every version (and the ledger) with it
    newest = max(previous.data_at if previous is not None else 0.0, versions.forgotten_at(home))
    if written_at >= newest:
        return
    raise UsageError(
        f"The snapshot {snapshot} was written at {_when(written_at)}, before the records global memory was last "
        f"built from or a `logo forget` ({_when(newest)}): a build from it would take back what was ingested since, "
        "and bring back anyone forgotten since.",
        "Write a new one with `logo snapshot DIR`, or build from the store (without --snapshot).",
    )


def finish(memory: GlobalMemory, say: Say) -> GlobalMemory:
    """The finishing steps both engines share, on the driver, before the release: whatever reads the finished
    memory as a whole (the item table, the profiles, the clusters), not per-record work. A step added here
    runs whichever engine built the memory: the items' collaborative neighbours."""
    from .collaborative import fit_neighbours

    if memory.items is not None:
        say("finding items the same people have")
        memory.neighbours = fit_neighbours(memory.items, None, memory.min_users)
    return memory


def write_descriptions(memory: GlobalMemory, describe: Callable[[Cluster], str], say: Say) -> None:
    """The model-written cluster descriptions (--describe), written from the clusters as everyone sees them:
    under privacy from the released keywords and shared items, never from the exact ones."""
    say("describing clusters with the model")
    shown = release.released_clusters(memory, memory.release, None) if memory.release is not None else memory.clusters
    for cluster, seen in zip(memory.clusters, shown, strict=True):
        if not seen.private:
            cluster.description = describe(seen)


@contextmanager
def _snapshot_for(
    store: Store | None,
    embedder_id: str,
    dim: int,
    home: Path,
    given: str | None,
    engine: str,
    master: str | None,
    say: Say,
) -> Iterator[str]:
    """The snapshot to build from: the one given, or a fresh one of the store, removed afterwards."""
    if given is not None:
        yield given
        return
    if master and not master.startswith("local"):
        raise UsageError(
            f"A cluster ({master}) reads the snapshot from a path its executors see.",
            "Write one there first with `logo snapshot DIR`, then pass --snapshot DIR.",
        )
    if store is None:
        raise UsageError("No store and no --snapshot to build from.")
    remove_stale_snapshots(home)
    folder = home.parent / f".snapshot-build-{os.getpid()}"
    try:
        say("snapshotting the store")
        write_snapshot(store, embedder_id, dim, folder)
        yield str(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_snapshots(home: Path) -> None:
    """Delete the snapshots (every record, as Parquet) that crashed builds left beside global memory `home`.
    Call it holding the store lock: a running build holds it too."""
    for stale in [*home.parent.glob(".snapshot-build-*"), *home.parent.glob("..snapshot-build-*")]:
        shutil.rmtree(stale, ignore_errors=True)


# ------------------------------------------------------------------------------------ what --update keeps


def keep_previous(home: Path, embedder_id: str) -> Kept:
    if not versions.on_disk(home):
        raise GlobalMemoryMissing()
    previous = versions.load_exact(home)  # the build's own figures, not the release everyone reads
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
