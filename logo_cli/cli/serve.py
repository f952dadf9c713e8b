"""`logo serve`: keep the models and memories loaded and answer over HTTP."""

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from .app import app
from .options import EmbedderOpt, HomeOpt, ModelOpt, WaitOpt, settings_for
from .output import emit, stderr
from .state import CliState


@app.command(
    "serve",
    epilog=(
        "Example: logo token create --admin  (once; prints the token)  then  LOGO_TOKEN=... logo serve &\n\n"
        'Example: export LOGO_SERVER=http://127.0.0.1:8765 LOGO_TOKEN=...; logo ask -u maya "Dinner?"\n\n'
        'Example: curl -s localhost:8765/ask -H "Authorization: Bearer $LOGO_TOKEN" --json '
        '\'{"user": "maya", "query": "How would I rate Heat?"}\'\n\n'
        "Example: logo serve --no-auth  (loopback only: any local process acts as the admin)"
    ),
)
def serve_cli(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Interface to listen on; 0.0.0.0 exposes it to the network (tokens required, use TLS)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")] = 8765,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Answer without tokens, every request as the admin's. Loopback addresses only.",
        ),
    ] = False,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="A name clients reach the server by (the Host header), beside its own address; repeatable; '*' "
            "accepts any (behind a proxy that checks it).",
            show_default=False,
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--cors-origin",
            help="A web origin (https://app.example) whose pages may call the server; repeatable.",
            show_default="none",
        ),
    ] = None,
    docs: Annotated[
        bool, typer.Option("--docs", help="Serve the API's docs at /docs (its page loads scripts from a CDN).")
    ] = False,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest request body, in MiB.", envvar="LOGO_MAX_BODY_MB")
    ] = 8.0,
    max_tokens_limit: Annotated[
        int, typer.Option("--max-tokens-limit", min=1, help="Most tokens an open answer may ask for (max_tokens).")
    ] = 512,
    time_limit: Annotated[
        float,
        typer.Option(
            "--time-limit",
            min=1.0,
            help="Seconds one answer (or one ingest request) may run once it has its turn, and wait for it; "
            "past it: HTTP 503.",
            envvar="LOGO_TIME_LIMIT",
        ),
    ] = 60.0,
    queue: Annotated[
        int,
        typer.Option(
            "--queue", min=0, max=32, help="Requests that may wait for their turn; one more gets HTTP 503 at once."
        ),
    ] = 16,
    wait: WaitOpt = None,
    home: HomeOpt = None,
    embedder: EmbedderOpt = None,
    model: ModelOpt = None,
) -> None:
    """Serve ask, ingest, users, profile and health as JSON over HTTP, with the embedder, the model, the store
    and global memory loaded once.

    Every request needs a bearer token (`logo token create`): a user's token reads and writes only that
    user's memory, the admin's (an application backend) anyone's. --no-auth drops tokens on a loopback
    address only. Point commands at the server with --server URL (or LOGO_SERVER) and LOGO_TOKEN: they pay no
    start-up. One answer runs at a time, quick ones (recommendations, ratings) before long generations;
    a client that disconnects stops its answer at the next token, and a full queue or an answer past
    --time-limit gets HTTP 503 with Retry-After. Each request takes the store lock like a CLI command, so
    `logo ingest` and `logo build-global` can run beside the server. Prints one JSON line ({"url": ...}) on
    stdout once it listens; SIGTERM or Ctrl-C stops it after the request in flight. Routes: docs/commands.md.
    """
    run = CliState.of(ctx)
    from ..server.app import Policy, is_loopback, serve
    from ..server.service import Limits, Service
    from ..tokens import Keyring

    loopback = is_loopback(host)
    if no_auth and not loopback:
        raise UsageError(
            f"--no-auth answers anyone who can reach {host}: it is refused on an address other than loopback.",
            "Create tokens (`logo token create --admin`, `--user U`) and drop --no-auth.",
        )
    settings = absolute(settings_for(run, home, embedder, model))
    if not no_auth and not len(Keyring(settings.home)):
        raise UsageError(
            f"No tokens in {settings.home} yet: nobody could use this server.",
            "Create one: `logo token create --admin` (an app backend's) or `--user U`; or, on loopback only, "
            "start with --no-auth.",
        )
    hosts = [h.strip().lower() for h in allow_host or [] if h.strip()]
    policy = Policy(
        auth=not no_auth,
        allowed_hosts=frozenset(h.strip("[]") for h in hosts if h != "*"),
        any_host="*" in hosts,
        cors_origins=tuple(cors_origin or ()),
        docs=docs,
        max_body=int(max_body_mb * (1 << 20)),
    )
    limits = Limits(max_tokens=max_tokens_limit, time_limit=time_limit, max_waiting=queue, max_body=policy.max_body)
    service = Service(settings, wait, limits)
    console = stderr(run)
    console.print("logo serve: loading the models...")
    service.warm()

    def ready(server: Any) -> None:
        sockets = [s for srv in server.servers for s in srv.sockets]
        bound = sockets[0].getsockname()[1] if sockets else port
        url = client_url(host, bound)
        emit({"url": url, "home": str(service.settings.home), "auth": not no_auth})
        where = f" (all interfaces of {host})" if host in ("0.0.0.0", "::", "") else ""
        console.print(f"logo serve: listening on {url}{where} (Ctrl-C to stop)")
        if not loopback and not no_auth:
            console.print(
                "[yellow]logo serve: tokens travel in clear over plain HTTP: put a TLS proxy in front of it.[/]"
            )

    serve(service, host, port, policy, on_ready=ready)
    console.print("logo serve: stopped")


def client_url(host: str, port: int) -> str:
    """A URL a client can use: a wildcard address is reached on loopback; an IPv6 address needs brackets."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def absolute(settings: Any) -> Any:
    """The settings with the home and any model path absolute: every message then names them as the server hides
    them from its users (a relative `data/logo` passed through in a lock's message)."""
    from dataclasses import replace

    def path_of(value: str) -> str:
        return str(Path(value).absolute()) if value and Path(value).exists() else value

    home, model, embedder = settings.home.absolute(), path_of(settings.model), path_of(settings.embedder)
    return replace(settings, home=home, model=model, embedder=embedder)
