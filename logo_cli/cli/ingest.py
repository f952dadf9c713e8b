"""`logo ingest`: records -> embeddings -> the store."""


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
    read (valid records), added, duplicates, invalid (lines skipped), users, embedder, and on a stop the
    error.
    """
    run = CliState.of(ctx)
    from ..embed import load_embedder
    from ..local_memory.ingest import IngestStopped, count_lines, ingest
    from ..local_memory.store import store_for

    if run.server:
        emit(_ingest_server(run, files, skip_invalid, batch_size))
        return
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


def _ingest_server(run: CliState, files: list[str], skip_invalid: bool, batch_size: int) -> dict[str, Any]:
    """The same ingest by a running `logo serve`, one request per file; the summaries added up."""
    import sys

    from rich.markup import escape

    from ..server.client import ServerClient, ServerError

    assert run.server is not None
    client = ServerClient(run.server)
    total: dict[str, Any] = {}
    for path in files:
        source = path if path != "-" else "<stdin>"
        try:
            if path == "-":
                summary = client.ingest(sys.stdin.buffer, skip_invalid=skip_invalid, batch_size=batch_size)
            else:
                try:
                    stream = open(path, "rb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    from ..errors import NotFound

                    raise NotFound(f"{path}: {exc.strerror or exc}.") from None
                with stream:
                    summary = client.ingest(stream, skip_invalid=skip_invalid, batch_size=batch_size)
        except ServerError as exc:  # as in process: what was stored before the bad line, then the error
            exc.message = exc.message.replace("<request>", source)
            if exc.summary is not None:
                emit({**exc.summary, "error": exc.message})
            raise
        for line in summary.pop("skipped", []):
            line = line.replace("<request>", source, 1)  # the server saw a body; the person named a file
            stderr(run).print(f"[yellow]skipped[/] {escape(line)}", soft_wrap=True)
        for key, value in summary.items():
            if key == "users":  # distinct users: files may share them, so the largest count is a floor
                total[key] = max(total.get(key, 0), value)
            elif isinstance(value, int):
                total[key] = total.get(key, 0) + value
            else:
                total[key] = value
    return total
