"""`logo build-global`: everyone's records -> global memory."""


from typing import Annotated

import typer

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
)
from .state import CliState


@app.command(
    "build-global",
    epilog=(
        "Example: logo build-global\n\nExample: logo build-global --clusters 12 --seed 1\n\n"
        "Example: logo ingest new.jsonl && logo build-global --update"
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
    describe: Annotated[
        bool, typer.Option("--describe", help="Ask the model for a one-line description of each cluster (cached).")
    ] = False,
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
    """
    run = CliState.of(ctx)
    from ..embed import load_embedder
    from ..global_memory.build import BuildOptions, build_global
    from ..local_memory.store import store_for

    settings = settings_for(run, home, embedder, model)
    if update and (clusters is not None or communities is not None):
        raise UsageError("--update keeps the existing clusters: drop --clusters / --communities, or drop --update.")
    embed_model = load_embedder(settings.embedder_spec())
    console = stderr(run)
    options = BuildOptions(
        clusters=clusters, communities=communities, seed=seed, min_users=min_users, segments=segments, update=update
    )
    describer = None
    if describe:
        from ..describe import Describer

        describer = Describer(settings)
    store = store_for(settings)
    with locked(run, settings, wait):
        if console.is_terminal:
            with console.status("building global memory") as status:
                memory = build_global(
                    store,
                    embed_model.id,
                    embed_model.dim,
                    settings.global_dir,
                    options,
                    progress=lambda msg: status.update(msg),
                    describe=describer,
                )
        else:
            memory = build_global(
                store, embed_model.id, embed_model.dim, settings.global_dir, options, describe=describer
            )
    if memory.drift.get("rebuild_advised"):
        console.print(
            "[yellow]Advice:[/] the data has drifted from the clusters "
            f"(similarity drop {memory.drift['similarity_drop']}, "
            f"new records {memory.drift['new_records_share']:.0%}): "
            "run `logo build-global` without --update to re-cluster."
        )
    emit(memory.summary())
