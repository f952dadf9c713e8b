"""`logo ingest`: records -> embeddings -> the store."""

from __future__ import annotations

from typing import Annotated, Any

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
    progress,
    stderr,
)
from .state import CliState


@app.command(
    "ingest",
    epilog="Example: logo ingest sample_histories/histories.jsonl\n\nExample: cat export.jsonl | logo ingest -",
)
def ingest_cli(
    ctx: typer.Context,
    files: Annotated[list[str], typer.Argument(help="JSONL files of records; - reads stdin.", show_default=False)],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Report bad lines on stderr and go on.")] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Records embedded and written at once.")
    ] = 2048,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Add user histories to local memory (records -> embeddings -> on-disk Chroma store).

    Each line is a JSON object: user (or user_id), text (or query + response), and optional timestamp,
    id, item, rating, label, meta. Re-ingesting the same records adds nothing. A bad line stops the run
    with FILE:LINE: reason and exit code 3; the records before it are kept. Prints one JSON summary line:
    read, added, duplicates, invalid, users.
    """
    run = CliState.of(ctx)
    from ..embed import load_embedder
    from ..ingest import IngestStopped, count_lines, ingest
    from ..store import store_for

    settings = settings_for(run, home, embedder)
    model = load_embedder(settings.embedder_spec())
    store = store_for(settings)
    console = stderr(run)

    def on_invalid(line: Any) -> None:
        from rich.markup import escape

        console.print(f"[yellow]skipped[/] {escape(str(line))}", soft_wrap=True)

    with progress(run, "ingesting", count_lines(files) if console.is_terminal else None) as update:
        try:
            with locked(run, settings, wait):
                summary = ingest(
                    files,
                    store,
                    model,
                    skip_invalid=skip_invalid,
                    batch_size=batch_size,
                    on_batch=lambda s: update(s.read + s.invalid),
                    on_invalid=on_invalid,
                )
        except IngestStopped as exc:
            emit({**exc.summary.to_json(), "error": exc.message})
            raise
    emit(summary.to_json())
