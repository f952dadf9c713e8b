"""`logo global` and `logo profile`: what global memory holds, and what it says of one user."""


from pathlib import Path
from typing import Annotated

import typer

from .. import rules
from .app import app
from .options import (
    AtOpt,
    BiasedDiversityOpt,
    BiasedHistoryOpt,
    ColdStartOpt,
    EmbedderOpt,
    HomeOpt,
    WaitOpt,
    ask_options,
    locked,
    parse_at,
    plot_file,
    settings_for,
)
from .output import (
    emit,
    is_terminal,
    print_clusters,
    print_profile,
    stderr,
)
from .state import CliState


@app.command(
    "global",
    epilog=(
        "Example: logo global\n\nExample: logo global --cluster 3\n\n"
        "Example: logo global --plot map.png\n\nExample: logo global --json | jq -r '.keywords | join(\" \")'\n\n"
        "Example: logo global --ledger | jq .epsilon_spent"
    ),
)
def global_cli(
    ctx: typer.Context,
    cluster: Annotated[int | None, typer.Option("--cluster", "-c", help="Show one cluster in full.")] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the clusters as a 2-D map into this PNG.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines even on a terminal.")] = False,
    ledger: Annotated[
        bool,
        typer.Option("--ledger", help="Print the privacy budget and the ledger of every release, as one JSON object."),
    ] = False,
    at: AtOpt = None,
    home: HomeOpt = None,
) -> None:
    """Show global memory: interest clusters with keywords, users, shared items, ratings and trend.

    A table on a terminal, one JSON object per cluster otherwise (or with --json). Every figure is released
    with differential privacy (each row's `epsilon`); --ledger shows what was released with which budget.
    """
    run = CliState.of(ctx)
    from ..views import cluster_rows, load_memory, plot_map, privacy_ledger

    settings = settings_for(run, home)
    target = plot_file(plot) if plot is not None else None
    memory = load_memory(settings, parse_at(at))
    if ledger:
        emit(privacy_ledger(settings, memory))
        return
    rows = cluster_rows(memory, cluster)
    if target is not None:
        plot_map(memory, target)
        stderr(run).print(f"wrote {target}")
        if not as_json:
            return
    if as_json or not is_terminal():
        for row in rows:
            emit(row)
        return
    print_clusters(rows, memory, detailed=cluster is not None)


@app.command("profile", epilog="Example: logo profile --user hollis\n\nExample: logo profile --user maya --json")
def profile_cli(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Whose profile.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object even on a terminal.")] = False,
    at: AtOpt = None,
    cold_start_max: ColdStartOpt = rules.COLD_START_MAX.default,
    biased_min_history: BiasedHistoryOpt = rules.BIASED_MIN_HISTORY.default,
    biased_max_diversity: BiasedDiversityOpt = rules.BIASED_MAX_DIVERSITY.default,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Show a user's profile: history size, diversity, dominant clusters, community, cold-start/biased.

    Diversity is the normalized entropy of the user's distribution over clusters: 0 means all their records
    fall in one cluster, 1 means evenly spread.
    """
    run = CliState.of(ctx)
    thresholds = {
        "cold_start_max": cold_start_max,
        "biased_min_history": biased_min_history,
        "biased_max_diversity": biased_max_diversity,
    }
    if run.server:  # the server checks them by the same rules
        from ..server.client import ServerClient

        view = ServerClient(run.server).profile(user, at, thresholds)
    else:
        from ..views import profile_view

        options = ask_options(**thresholds).mediator()
        settings = settings_for(run, home, embedder)
        with locked(run, settings, wait):
            view = profile_view(settings, user, parse_at(at), options)
    if as_json or not is_terminal():
        emit(view)
        return
    print_profile(view, user)
