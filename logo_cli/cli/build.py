"""`logo build-global`: everyone's records -> global memory; `logo snapshot`: the store -> Parquet files."""

import math
from pathlib import Path
from typing import Annotated

import typer

from .. import rules
from ..errors import UsageError
from .app import app
from .options import (
    EmbedderOpt,
    HomeOpt,
    ModelOpt,
    WaitOpt,
    locked,
    settings_for,
)
from .output import (
    emit,
    stderr,
    terminal_status,
)
from .state import CliState


@app.command(
    "build-global",
    epilog=(
        "Example: logo build-global\n\nExample: logo build-global --clusters 12 --seed 1\n\n"
        "Example: logo ingest new.jsonl && logo build-global --update\n\n"
        "Example: logo build-global --engine spark --master local[2]\n\n"
        "Example: logo snapshot /shared/logo-snap && logo build-global --engine spark "
        "--master spark://head:7077 --snapshot /shared/logo-snap"
    ),
)
def build_global_cli(
    ctx: typer.Context,
    clusters: Annotated[
        int | None, typer.Option("--clusters", min=1, help="Force k interest clusters (default: chosen by silhouette).")
    ] = None,
    communities: Annotated[
        int | None,
        typer.Option("--communities", min=1, help="Force the number of user communities (default: automatic)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same clusters.")] = 0,
    min_users: Annotated[
        int,
        typer.Option("--min-users", min=1, help="Clusters, items and ratings from fewer distinct users stay private."),
    ] = 3,
    segments: Annotated[int, typer.Option("--segments", min=0, help="Time periods for each cluster's trend.")] = 4,
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Keep the clusters, assign new records to them and refresh every statistic (fast)."
        ),
    ] = False,
    epsilon: Annotated[
        str, typer.Option("--epsilon", envvar="LOGO_EPSILON", help=rules.EPSILON.help)
    ] = f"{rules.EPSILON.default:g}",
    period_days: Annotated[
        float | None,
        typer.Option(
            "--period-days",
            min=rules.PERIOD_DAYS.ge,
            max=rules.PERIOD_DAYS.le,
            help=rules.PERIOD_DAYS.help,
            show_default=False,
        ),
    ] = None,
    describe: Annotated[
        bool, typer.Option("--describe", help="Ask the model for a one-line description of each cluster (cached).")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="local: this process, in streaming passes; spark: Apache Spark (pip install 'logo-cli[spark]').",
        ),
    ] = "local",
    master: Annotated[
        str | None,
        typer.Option(
            "--master",
            help="Spark master: local[N] (default local[*]), spark://HOST:PORT, or a Spark Connect sc://HOST:PORT.",
        ),
    ] = None,
    snapshot: Annotated[
        str | None,
        typer.Option(
            "--snapshot",
            help="Build from this snapshot (`logo snapshot DIR`) instead of snapshotting the store first; "
            "with a cluster, a path its executors read.",
        ),
    ] = None,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Cluster everyone's records into global memory: interest clusters, user profiles, communities.

    Each cluster gets keywords (class-based TF-IDF), its most shared items, rating mean, size, users and a
    trend over time; each user a cluster distribution and diversity (normalized entropy); users with
    similar distributions form communities. Written as a new version and switched atomically: `ask`
    keeps using the previous one until the build is complete. Prints one JSON line.

    The build reads a Parquet snapshot of the store (written first into a temporary folder, or given with
    --snapshot). --engine spark runs the same stages on Apache Spark: local[N] on this machine, or a cluster.
    """
    run = CliState.of(ctx)
    from ..embed import load_embedder
    from ..global_memory.build import BuildOptions, build_global
    from ..global_memory.release import period_advice
    from ..local_memory.store import store_for

    settings = settings_for(run, home, embedder, model)
    if update and (clusters is not None or communities is not None):
        raise UsageError("--update keeps the existing clusters: drop --clusters / --communities, or drop --update.")
    embed_model = load_embedder(settings.embedder_spec())
    console = stderr(run)
    options = BuildOptions(
        clusters=clusters,
        communities=communities,
        seed=seed,
        min_users=min_users,
        segments=segments,
        update=update,
        epsilon=parse_epsilon(epsilon),
        period_days=period_days,
    )
    describer = None
    if describe:
        from ..describe import Describer

        describer = Describer(settings)
    store = store_for(settings)
    with locked(run, settings, wait), terminal_status(console, "building global memory") as status:
        memory = build_global(
            store,
            embed_model.id,
            embed_model.dim,
            settings.global_dir,
            options,
            progress=status,
            describe=describer,
            engine=engine,
            master=master,
            snapshot=snapshot,
        )
    if memory.drift.get("rebuild_advised"):
        console.print(
            "[yellow]Advice:[/] the data has drifted from the clusters "
            f"(similarity drop {memory.drift['similarity_drop']}, "
            f"new records {memory.drift['new_records_share']:.0%}): "
            "run `logo build-global` without --update to re-cluster."
        )
    privacy = memory.privacy(brief=True)
    advice = period_advice(privacy.get("periods", 0), privacy.get("period_days", 0.0))
    if advice:
        console.print(f"[yellow]Advice:[/] {advice}")
    emit(memory.summary())


SMALLEST_EPSILON = 0.01  # below this a rating sum's noise has a scale of thousands of steps: every figure is noise
LARGEST_EPSILON = 1e6  # above this the noise is nothing (the docs' "no noise" builds use 10^6): ask for inf by name


def parse_epsilon(text: str) -> float | None:
    """--epsilon: a number from SMALLEST_EPSILON to LARGEST_EPSILON, or inf (None) for exact statistics. A larger
    number is refused, not read as inf or as private: exact figures are asked for by name."""
    try:
        value = float(text) if "_" not in text else float("nan")  # Python reads "1_0" as 10: a typo, not a budget
    except ValueError:
        value = float("nan")
    if math.isinf(value) and value > 0 and text.strip().lower().lstrip("+") in ("inf", "infinity"):
        return None
    if not SMALLEST_EPSILON <= value <= LARGEST_EPSILON:  # nan fails too
        raise UsageError(
            f"--epsilon must be a number from {SMALLEST_EPSILON:g} to {LARGEST_EPSILON:g}, or inf, not {text!r}.",
            f"The default is {rules.EPSILON.default:g}; below {SMALLEST_EPSILON:g} noise hides every figure, and "
            "`--epsilon inf` releases exact figures (they protect nobody).",
        )
    return value


@app.command(
    "snapshot",
    epilog="Example: logo snapshot /shared/logo-snap\n\nExample: logo build-global --snapshot /shared/logo-snap",
)
def snapshot_cli(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (a snapshot already there is replaced).")],
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Write the store as Parquet files, the input of `build-global`: one pass over the store.

    One row per record (id, user, item, label, time, rating, text, vector) in files of up to 1M records, in row
    groups a cluster reads in parallel, with the store's stamp (embedder, dimension, schema) in stamp.json.
    Written beside OUT_DIR and renamed at the end. Prints one JSON line.
    """
    run = CliState.of(ctx)
    from ..embed import load_embedder
    from ..global_memory.snapshot import write_snapshot
    from ..local_memory.store import store_for

    settings = settings_for(run, home, embedder)
    embed_model = load_embedder(settings.embedder_spec())
    console = stderr(run)
    store = store_for(settings)
    with locked(run, settings, wait), terminal_status(console, "writing the snapshot") as status:
        summary = write_snapshot(
            store,
            embed_model.id,
            embed_model.dim,
            out_dir,
            progress=None if status is None else lambda n: status(f"writing the snapshot: {n} records"),
        )
    emit(summary.to_json())
