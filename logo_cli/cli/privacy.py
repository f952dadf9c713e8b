"""`logo export` and `logo forget`: a user's records out, or gone everywhere."""


from typing import Annotated

import typer

from .app import app
from .options import (
    EmbedderOpt,
    HomeOpt,
    WaitOpt,
    locked,
    settings_for,
)
from .output import (
    emit,
)
from .state import CliState


@app.command("export", epilog="Example: logo export --user maya > maya.jsonl")
def export_cli(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Whose records.", show_default=False)],
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Write all of a user's records as JSONL on stdout, oldest first: the input format of `logo ingest`."""
    run = CliState.of(ctx)
    from ..privacy import export_user

    settings = settings_for(run, home, embedder)
    with locked(run, settings, wait):
        for record in export_user(settings, user):
            emit(record.to_json())


@app.command("forget", epilog="Example: logo forget --user maya --dry-run\n\nExample: logo forget --user maya")
def forget_cli(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Whose records to delete.", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say how many records would go.")] = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Delete every record of a user, and refresh global memory so nothing counts them any more.

    Global memory is refreshed at once (`build-global --update`): no cluster size, item, rating, profile
    or community counts the user afterwards. Run a full `logo build-global` to re-cluster without them too.
    """
    run = CliState.of(ctx)
    from dataclasses import asdict

    from ..privacy import forget_user

    settings = settings_for(run, home, embedder)
    with locked(run, settings, wait):
        report = forget_user(settings, user, dry_run=dry_run)
    emit(asdict(report))
