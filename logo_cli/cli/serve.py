"""`logo serve`: keep the models and memories loaded and answer over HTTP on this machine."""


from typing import Annotated, Any

import typer

from .app import app
from .options import EmbedderOpt, HomeOpt, ModelOpt, WaitOpt, settings_for
from .output import emit, stderr
from .state import CliState


@app.command(
    "serve",
    epilog=(
        'Example: logo serve &  then  logo --server http://127.0.0.1:8765 ask --user maya "What should I watch?"\n\n'
        'Example: export LOGO_SERVER=http://127.0.0.1:8765; for u in maya ines; do logo ask -u $u "Dinner?"; done\n\n'
        'Example: curl -s localhost:8765/ask -d \'{"user": "maya", "query": "How would I rate Heat?"}\''
    ),
)
def serve_cli(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Interface to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")] = 8765,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Serve ask, ingest, users, profile and health as JSON over HTTP, with the embedder, the model, the store
    and global memory loaded once.

    Point commands at it with --server URL (or LOGO_SERVER) and they pay no start-up. Each request takes the
    store lock like a CLI command, so `logo ingest` and `logo build-global` can run beside the server: a
    request waits while they write, and the server reads what they wrote before its next answer. Prints one
    JSON line ({"url": ...}) on stdout once it listens; SIGTERM or Ctrl-C stops it after the request in
    flight. Routes and their bodies: docs/commands.md.
    """
    run = CliState.of(ctx)
    from ..server.app import serve
    from ..server.service import Service

    service = Service(settings_for(run, home, embedder, model), wait)
    console = stderr(run)
    console.print("logo serve: loading the models...")
    service.warm()

    def ready(server: Any) -> None:
        sockets = [s for srv in server.servers for s in srv.sockets]
        bound = sockets[0].getsockname()[1] if sockets else port
        url = f"http://{host}:{bound}"
        emit({"url": url, "home": str(service.settings.home)})
        console.print(f"logo serve: listening on {url} (Ctrl-C to stop)")

    serve(service, host, port, on_ready=ready)
    console.print("logo serve: stopped")
