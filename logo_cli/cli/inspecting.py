"""`logo users`, `stats`, `history`, `paths`, `config`, `doctor`: facts about the store and the install."""


from typing import Annotated

import typer

from ..errors import ExitCode
from .app import app
from .options import (
    EmbedderOpt,
    HomeOpt,
    JsonOpt,
    ModelOpt,
    WaitOpt,
    locked,
    settings_for,
)
from .output import (
    object_out,
    print_checks,
    rows_out,
)
from .state import CliState


@app.command("users", epilog="Example: logo users\n\nExample: logo users | jq -r 'select(.diversity <= 0.7) | .user'")
def users_cli(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """List the users in the store: records and time span; once global memory is built, also diversity,
    community and dominant clusters (JSON lines when piped)."""
    run = CliState.of(ctx)
    from ..status import users

    if run.server:
        from ..server.client import ServerClient

        rows = ServerClient(run.server).users()
    else:
        settings = settings_for(run, home, embedder)
        with locked(run, settings, wait):
            rows = users(settings)
    columns = ["user", "records", "first", "last"]
    if rows and "diversity" in rows[0]:
        columns += ["diversity", "community", "dominant"]
    rows_out(rows, as_json, columns, f"{len(rows)} users")


@app.command("stats", epilog="Example: logo stats\n\nExample: logo stats --json | jq .global.stale")
def stats_cli(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Records, users, clusters, store size, embedder and model, global memory age and whether it is stale."""
    run = CliState.of(ctx)
    from ..status import stats

    settings = settings_for(run, home, embedder)
    with locked(run, settings, wait):
        object_out(stats(settings), as_json)


@app.command("history", epilog="Example: logo history --user maya --limit 5")
def history_cli(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Whose records.", show_default=False)],
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N records.")] = None,
    as_json: JsonOpt = False,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """A user's records, newest first."""
    run = CliState.of(ctx)
    from ..status import history

    settings = settings_for(run, home, embedder)
    with locked(run, settings, wait):
        rows = history(settings, user, limit)
    rows_out(rows, as_json, ["timestamp", "item", "rating", "text"], f"{user}: newest {len(rows)} records")


@app.command("paths", epilog="Example: logo paths --json | jq -r .store")
def paths_cli(ctx: typer.Context, as_json: JsonOpt = False, home: HomeOpt = None) -> None:
    """Where logo keeps things: home, config file, store, global memory, models in use."""
    run = CliState.of(ctx)
    from ..status import paths

    object_out(paths(settings_for(run, home)), as_json)


@app.command(
    "config", epilog="Example: logo config\n\nExample: echo 'threads = 2' >> $(logo paths --json | jq -r .config)"
)
def config_cli(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Show the settings in effect and where each comes from: flag, LOGO_* variable, config.toml or default.

    `$LOGO_HOME/config.toml` may set `model`, `embedder`, `threads`, `ctx`, `chroma_url` and `llm_url`; flags
    and environment variables win over it.
    """
    run = CliState.of(ctx)
    from ..status import config

    object_out(config(settings_for(run, home, embedder, model)), as_json)


@app.command("doctor", epilog="Example: logo doctor  # paste its output into bug reports")
def doctor_cli(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Check the install: versions, the embedder and the GGUF load and run on this CPU, the store opens."""
    run = CliState.of(ctx)
    from contextlib import ExitStack

    from ..errors import StoreError
    from ..status import doctor

    settings = settings_for(run, home, embedder, model)
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(run, settings, None))
            unusable = None
        except StoreError as exc:  # LOGO_HOME is a file or read-only: one failed check, the others still run
            unusable = exc
        checks = doctor(settings, unusable)
    print_checks(checks, as_json)
    if not all(c["ok"] for c in checks):
        raise typer.Exit(int(ExitCode.CHECK_FAILED))
