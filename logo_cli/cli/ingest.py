"""`logo ingest`: records -> embeddings -> the store."""


from typing import Annotated, Any

import typer

from .. import rules
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
        int,
        typer.Option("--batch-size", min=rules.BATCH_SIZE.ge, max=rules.BATCH_SIZE.le, help=rules.BATCH_SIZE.help),
    ] = rules.BATCH_SIZE.default,
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
    if not summary.read and not summary.invalid:
        console.print("[yellow]Note:[/] no records in the input: nothing was ingested (is the file empty?)")


def _ingest_server(run: CliState, files: list[str], skip_invalid: bool, batch_size: int) -> dict[str, Any]:
    """The same ingest by a running `logo serve`: each file in pieces of about a MiB (one request each, so other
    requests get turns between them); the summaries added up, bad lines named by file and line."""
    import sys

    from ..server.client import ServerClient, ServerError

    assert run.server is not None
    client = ServerClient(run.server)
    total: dict[str, Any] = {}
    for path in files:
        source = path if path != "-" else "<stdin>"
        try:
            if path == "-":
                sent = client.ingest(sys.stdin.buffer, skip_invalid=skip_invalid, batch_size=batch_size)
                for offset, summary in sent:
                    _add(total, summary, source, offset, run)
            else:
                try:
                    stream = open(path, "rb")  # noqa: SIM115 - closed below
                except OSError as exc:
                    from ..errors import NotFound

                    raise NotFound(f"{path}: {exc.strerror or exc}.") from None
                with stream:
                    for offset, summary in client.ingest(stream, skip_invalid=skip_invalid, batch_size=batch_size):
                        _add(total, summary, source, offset, run)
        except ServerError as exc:  # as in process: what was stored before the bad line, then the error
            exc.message = _named(exc.message, source, exc.offset)
            if exc.summary is not None:
                partial = dict(total)
                _add(partial, exc.summary, source, exc.offset, run)
                emit({**partial, "error": exc.message})
            raise
    return total


def _named(message: str, source: str, offset: int) -> str:
    """`<request>:N: reason` as the person's file names it: `FILE:LINE: reason`."""
    import re

    return re.sub(r"^<request>:(\d+):", lambda m: f"{source}:{offset + int(m.group(1))}:", message, count=1)


def _add(total: dict[str, Any], summary: dict[str, Any], source: str, offset: int, run: CliState) -> None:
    from rich.markup import escape

    for line in summary.pop("skipped", []):
        stderr(run).print(f"[yellow]skipped[/] {escape(_named(line, source, offset))}", soft_wrap=True)
    for key, value in summary.items():
        if key == "users":  # distinct users: files (and pieces) may share them, so the largest count is a floor
            total[key] = max(total.get(key, 0), value)
        elif isinstance(value, int):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value
