"""The HTTP routes of `logo serve` (FastAPI), and the checks in front of them.

    GET  /health                      {"ok", "version"}; with the admin's token also paths, counters, limits
    POST /ask                         {user, query, ...ask's options}: one answer, as `logo ask --json`
    POST /ask?stream=true             JSON lines: {"token": ...} while an open answer is generated, then
                                      {"answer": {...}}
    POST /ask/batch                   {"questions": [{user, query, ...}], "defaults": {...}}: JSON lines,
                                      one answer per question, as `logo ask -`
    POST /ingest?skip_invalid=&batch_size=   a JSONL body of records: the summary, as `logo ingest`
    GET  /users                       as `logo users --json` (the admin's token only)
    GET  /profile?user=U&at=T         as `logo profile --json`

Before a route runs (`Guard`, plain ASGI): the `Host` header must name the address the connection came in
on, a loopback name on a loopback server, or an `--allow-host` (DNS rebinding); the bearer token must be
valid (unless `--no-auth`; `/health` answers without one); a POST must say it is JSON (a web page cannot send
that without a CORS preflight, which is refused unless `--cors-origin` names the page's origin); and the body
may not be larger than `--max-body-mb`, checked on `Content-Length` before anything is read and again while
reading.

Errors are {"error", "hint", "exit_code"} with the status the error stands for: 400 usage, 401 no or bad
token, 403 another user's memory, 404 not found, 409 the store lock (a CLI process kept it past --wait), 413
too large, 415 not JSON, 421 a Host this server is not, 422 bad data, 503 busy or past the time limit (with
`Retry-After`), 500 otherwise. Every check happens before the first byte of an answer; a streamed answer
(ask?stream=true, a batch) sends its status with its first line, so only an error after that is the stream's
last line.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at definition time,
# and Request/Response are imported inside create_app (fastapi loads only when serving).
import asyncio
import contextlib
import ipaddress
import re
import signal
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..cancel import Cancelled
from ..config import Settings
from ..errors import Denied, ExitCode, LogoError, ModelError, UsageError
from ..tokens import Grant, Keyring
from .queue import LONG, QUICK, Ticket
from .service import ADMIN, Service

STATUS = {
    ExitCode.USAGE: 400,
    ExitCode.BAD_DATA: 422,
    ExitCode.NOT_FOUND: 404,
    ExitCode.BUSY: 409,
    ExitCode.DENIED: 403,
    ExitCode.MODEL: 500,
    ExitCode.STORE: 500,
    ExitCode.ERROR: 500,
}
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")
GONE = "the client went away"
BUG_HINT = "This is a bug in logo: please report it."
FOLDERS = re.compile(r"(?<![\w/.$])/(?:[^\s/@]+/)+")  # the folders of an absolute path (not a URL's path)


class Refused(LogoError):
    """A request refused before any route runs, with its own status (413, 415, 421)."""

    exit_code = ExitCode.USAGE

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status


@dataclass(frozen=True)
class Policy:
    """Who may talk to the server and how much they may send (from `logo serve`'s options)."""

    auth: bool = True
    allowed_hosts: frozenset[str] = frozenset()  # names a Host header may carry besides the connection's address
    any_host: bool = False  # --allow-host '*': behind a proxy that checks it
    cors_origins: tuple[str, ...] = ()
    docs: bool = False
    max_body: int = 8 << 20


def status_of(exc: LogoError) -> int:
    cause = getattr(exc, "cause", None)  # an ingest stopped by an error: the error's status
    for error in (exc, cause):
        if isinstance(error, Cancelled):
            return 503
        status = getattr(error, "status", None)
        if isinstance(status, int):
            return status
    return STATUS.get(exc.exit_code, 500)


def error_body(exc: LogoError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": exc.message, "hint": exc.hint, "exit_code": int(exc.exit_code)}
    summary = getattr(exc, "summary", None)
    if summary is not None:  # an ingest stopped by a bad line or the time limit: what it stored before
        body["summary"] = summary.to_json()
    return body


def error_headers(exc: LogoError, status: int) -> dict[str, str]:
    headers = {}
    if status == 503:
        headers["Retry-After"] = str(getattr(exc, "retry_after", None) or 1)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="logo"'
    if status in (413, 421):
        headers["Connection"] = "close"  # the body that was not read is not a next request
    return headers


def bug_body(exc: BaseException) -> dict[str, Any]:
    return {"error": f"{type(exc).__name__}: {exc}", "hint": BUG_HINT, "exit_code": 1}


def hidden_paths(settings: Settings) -> dict[str, str]:
    """The server's own paths and addresses, each with the name a client sees instead (as /health, errors show
    them only to the admin): longest first, so a home inside a model's folder is not half replaced."""
    from ..llm.remote.http import normalize_url

    # absolute forms only: a relative home "h" would turn every h into $LOGO_HOME
    named: dict[str, list[str]] = {"$LOGO_HOME": [str(settings.home.absolute()), str(settings.home.resolve())]}
    for name, value in (("$LOGO_MODEL", settings.model), ("$LOGO_EMBEDDER", settings.embedder)):
        if value and Path(value).is_absolute():
            named[name] = [value, str(Path(value).resolve())]
    if settings.llm_url:  # as typed, and as the messages and stamps write it (…/v1)
        base = normalize_url(settings.llm_url)
        named["$LOGO_LLM_URL"] = [settings.llm_url.rstrip("/"), base, base.removesuffix("/v1")]
    if settings.chroma_url:
        named["$LOGO_CHROMA_URL"] = [settings.chroma_url.rstrip("/")]
    paths = {form: name for name, forms in named.items() for form in forms}
    return dict(sorted(paths.items(), key=lambda item: -len(item[0])))


def hide(text: str, paths: dict[str, str]) -> str:
    for path, name in paths.items():
        text = text.replace(path, name)
    return text


def for_client(
    exc: BaseException, body: dict[str, Any], status: int, paths: dict[str, str], admin: bool
) -> dict[str, Any]:
    """An error body as a client may read it. The admin's in full, and a 4xx but 409 (the client's own input, which
    it may echo: hiding paths there would tell a client which path it guessed). A 5xx (the store, the model, a
    bug) or a 409 (the store's lock, which names the home) for anyone else without the server's paths and
    folders, an LLM server's own words or a bug's text: the server's stderr has them."""
    if admin or (status < 500 and status != 409):
        return body
    if not isinstance(exc, LogoError):
        return {**body, "error": "Internal error: the server's log (its stderr) has the details."}
    upstream = exc.upstream if isinstance(exc, ModelError) else None
    if upstream is not None:  # an LLM server's own words: they may name its files
        status_text = f" (HTTP {upstream})" if upstream else ""
        return {**body, "error": f"The LLM server failed{status_text}.", "hint": "The server's log has more."}
    def shown(text: str) -> str:
        return FOLDERS.sub("", hide(text, paths))  # the named paths, then any other folder (the packaged model's)

    return {**body, "error": shown(body["error"]), "hint": shown(body["hint"]) if body["hint"] else None}


def models_for_client(answer: Any, paths: dict[str, str], admin: bool) -> Any:
    """An answer's model stamps for anyone but the admin: a model's file name, not its folder or server."""
    if admin or not isinstance(answer, dict) or not isinstance(answer.get("models"), dict):
        return answer
    shown = {k: FOLDERS.sub("", hide(v, paths)) if isinstance(v, str) else v for k, v in answer["models"].items()}
    return {**answer, "models": shown}


def line(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS) + b"\n"


# ------------------------------------------------------------------------------------------------ the guard


def host_name(value: str) -> str:
    """The host of a Host header, without its port and brackets, lowercase."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """The checks every request passes before a route sees it (plain ASGI: no per-request task or copy)."""

    def __init__(self, app: Any, policy: Policy, keyring: Keyring | None, paths: dict[str, str]) -> None:
        self.app = app
        self.policy = policy
        self.keyring = keyring
        self.paths = paths  # its errors come before any grant: a 5xx's paths are hidden from every client

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            self._host(headers.get("host"), scope.get("server"))
            scope["logo.grant"] = self._grant(headers.get("authorization"), scope)
            if scope["method"] == "POST":
                self._json(headers.get("content-type"))
            receive = self._limited(headers.get("content-length"), receive)
        except Exception as exc:  # a tokens file that is not one (500), or a bug: JSON, as every other error
            if not isinstance(exc, LogoError):
                traceback.print_exception(exc)
            elif status_of(exc) == 500:
                print(f"logo serve: 500: {exc.message}", file=sys.stderr, flush=True)
            await respond(send, exc, self.paths)
            return
        await self.app(scope, receive, send)

    def _host(self, host: str | None, server: Any) -> None:
        if self.policy.any_host:
            return
        name = host_name(host or "")
        bound = str(server[0]).lower() if server else ""
        if name and (name == bound or name in self.policy.allowed_hosts or (is_loopback(bound) and is_loopback(name))):
            return
        raise Refused(
            421,
            f"This server does not answer for the host {host!r}.",
            "Use the address it listens on, or start it with --allow-host NAME for a name that reaches it.",
        )

    def _grant(self, header: str | None, scope: dict[str, Any]) -> Grant | None:
        if not self.policy.auth or self.keyring is None:
            return ADMIN
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            grant = self.keyring.check(token.strip())
            if grant is not None:
                return grant
            raise Denied("Unknown or revoked token.", "Create one with `logo token create`.", status=401)
        if scope["method"] == "GET" and scope["path"] in ("/health", "/docs", "/openapi.json", "/redoc"):
            return None  # public: only whether it is up (and the API's description, with --docs)
        raise Denied(
            "This server needs a token: send `Authorization: Bearer TOKEN`.",
            "`logo --server` sends $LOGO_TOKEN; `logo token create --user U` (or --admin) makes one.",
            status=401,
        )

    def _json(self, content_type: str | None) -> None:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media not in JSON_TYPES:
            raise Refused(
                415,
                f"A POST body must be JSON (Content-Type: application/json), not {content_type or 'untyped'!r}.",
                'curl: --json, or -H "Content-Type: application/json".',
            )

    def _limited(self, length: str | None, receive: Any) -> Any:
        limit = self.policy.max_body
        too_large = Refused(
            413,
            f"The request body is larger than this server takes ({limit:,} bytes).",
            "Send fewer questions or records per request (`logo --server ingest` splits files itself), or start the "
            "server with a larger --max-body-mb.",
        )
        if length is not None:
            try:
                if int(length) > limit:
                    raise too_large
            except ValueError:
                raise Refused(400, f"Content-Length {length!r} is not a number.") from None
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large
            return message

        return counted


async def respond(send: Any, exc: Exception, paths: dict[str, str]) -> None:
    if isinstance(exc, LogoError):
        status, shown = status_of(exc), error_body(exc)
        headers_of = error_headers(exc, status)
    else:
        status, shown, headers_of = 500, bug_body(exc), {}
    body = orjson.dumps(for_client(exc, shown, status, paths, admin=False))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in headers_of.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------------ the app


def create_app(service: Service, policy: Policy | None = None) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    policy = policy or Policy()
    app = FastAPI(
        title="logo",
        description=__doc__,
        version=service.health(None)["version"],
        docs_url="/docs" if policy.docs else None,
        redoc_url="/redoc" if policy.docs else None,
        openapi_url="/openapi.json" if policy.docs else None,
    )

    def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        body = orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
        return Response(body, status, headers=headers, media_type="application/json")

    paths = hidden_paths(service.settings)

    def admin(request: Request) -> bool:
        grant = request.scope.get("logo.grant")
        return isinstance(grant, Grant) and grant.admin

    def shown(request: Request, exc: BaseException) -> dict[str, Any]:
        """The body of `exc` as this request's client may read it; a 5xx in full on stderr, for the operator."""
        if isinstance(exc, LogoError):
            body, status = error_body(exc), status_of(exc)
        else:
            body, status = bug_body(exc), 500
            traceback.print_exception(exc)
        if status == 500 and isinstance(exc, LogoError):  # (not 503: a full queue would write a line a request)
            print(f"logo serve: {status}: {exc.message}", file=sys.stderr, flush=True)
        return for_client(exc, body, status, paths, admin(request))

    def answered(request: Request, answer: Any) -> Any:
        return models_for_client(answer, paths, admin(request))

    def failure(request: Request, exc: LogoError) -> Response:
        status = status_of(exc)
        return json_response(shown(request, exc), status, error_headers(exc, status))

    @app.exception_handler(LogoError)
    async def logo_error(request: Request, exc: LogoError) -> Response:
        return failure(request, exc)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:
        message = {404: "No such route.", 405: "This route does not take that method."}.get(exc.status_code)
        body = {"error": message or str(exc.detail), "hint": "Routes: docs/commands.md#logo-serve", "exit_code": 2}
        return json_response(body, exc.status_code, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return failure(request, UsageError(f"`{where}`: {first.get('msg')}" if where else str(first.get("msg"))))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        return json_response(shown(request, exc), 500)

    def grant_of(request: Request) -> Grant:
        grant = request.scope.get("logo.grant")
        if grant is None:  # a public route's caller asked for more
            raise Denied("This route needs a token.", status=401)
        assert isinstance(grant, Grant)
        return grant

    async def body_of(request: Request) -> Any:
        data = await request.body()
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"The request body is not JSON: {exc}") from None

    def flag(request: Request, name: str) -> bool:
        value = request.query_params.get(name, "false").lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise UsageError(f"`{name}` must be true or false, not {value!r}")
        return value in ("true", "1", "yes")

    async def worked(request: Request, ticket: Ticket, fn: Callable[[], Any]) -> Any:
        """Run `fn` in a worker thread; a client that disconnects meanwhile cancels its ticket (the work stops
        at its next checkpoint, the next token). The ticket's place is freed when the work ends."""

        def run() -> Any:
            try:
                return fn()
            finally:
                service.queue.release(ticket)

        work = asyncio.ensure_future(run_in_threadpool(run))
        gone = asyncio.ensure_future(_disconnected(request.receive))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                ticket.cancel(GONE)
            return await work
        finally:
            gone.cancel()
            if not work.done():
                ticket.cancel(GONE)  # the thread releases the place when it ends
            else:
                service.queue.release(ticket)  # done (or never started): released once, whoever is first

    async def streamed(request: Request, ticket: Ticket, produce: Callable[[Callable[[Any], None]], None]) -> Response:
        """Run `produce(put)` in a worker thread and stream what it puts as JSON lines. The status waits for the
        first line, so an error before it (a model that fails, the queue, the time limit) is a status."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(item: Any) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, ("item", item))

        def run() -> None:
            try:
                produce(put)
                loop.call_soon_threadsafe(pieces.put_nowait, ("end", None))
            except BaseException as exc:
                loop.call_soon_threadsafe(pieces.put_nowait, ("end", exc))
            finally:
                service.queue.release(ticket)

        work = asyncio.ensure_future(run_in_threadpool(run))
        gone = asyncio.ensure_future(_disconnected(request.receive))
        try:
            getter = asyncio.ensure_future(pieces.get())
            await asyncio.wait({getter, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                ticket.cancel(GONE)
                await work
                raise Cancelled(f"Stopped: {GONE}.")
        except BaseException:
            ticket.cancel(GONE)
            raise
        finally:
            gone.cancel()
        kind, first = getter.result()
        if kind == "end" and first is not None:
            raise first  # before the first line: the status says it

        async def lines() -> AsyncIterator[bytes]:
            kind_, item = kind, first
            try:
                while kind_ == "item":
                    yield line(item)
                    kind_, item = await pieces.get()
                if item is not None:  # after the first line: the stream's last line says it
                    yield line(shown(request, item))
            finally:
                if not work.done():  # a client that left stops the work at its next token
                    ticket.cancel(GONE)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get("/health")
    async def health(request: Request) -> Response:
        return json_response(service.health(request.scope.get("logo.grant")))

    @app.post("/ask")
    async def ask(request: Request) -> Response:
        grant = grant_of(request)
        stream = flag(request, "stream")
        question = service.read_question(await body_of(request), grant)  # every check before any work
        ticket = service.queue.admit(service.lane(question))
        if not stream:
            answer = await worked(request, ticket, lambda: service.ask(question, ticket))
            return json_response(answered(request, answer))

        def produce(put: Callable[[Any], None]) -> None:
            answer = service.ask_stream(question, ticket, lambda t: put({"token": t}))
            put({"answer": answered(request, answer)})

        return await streamed(request, ticket, produce)

    @app.post("/ask/batch")
    async def ask_batch(request: Request) -> Response:
        grant = grant_of(request)
        batch = service.read_batch(await body_of(request), grant)  # a bad line anywhere: 4xx, nothing answered
        ticket = service.queue.admit(LONG if len(batch) > 1 else QUICK)

        def produce(put: Callable[[Any], None]) -> None:
            for answer in service.answer_batch(batch, ticket):
                put(answered(request, answer))

        return await streamed(request, ticket, produce)

    @app.post("/ingest")
    async def ingest(request: Request) -> Response:
        grant = grant_of(request)
        data, skip_invalid, batch_size = service.read_ingest(await request.body(), dict(request.query_params), grant)
        ticket = service.queue.admit(LONG)
        answer = await worked(request, ticket, lambda: service.ingest(data, skip_invalid, batch_size, ticket))
        return json_response(answer)

    @app.get("/users")
    async def users(request: Request) -> Response:
        grant = service.read_users(grant_of(request))
        ticket = service.queue.admit(QUICK)
        return json_response(await worked(request, ticket, lambda: service.users(grant, ticket)))

    @app.get("/profile")
    async def profile(request: Request) -> Response:
        user, when, options = service.read_profile(dict(request.query_params), grant_of(request))
        ticket = service.queue.admit(QUICK)
        return json_response(await worked(request, ticket, lambda: service.profile(user, when, options, ticket)))

    outer: Any = Guard(app, policy, Keyring(service.settings.home) if policy.auth else None, paths)
    if policy.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        outer = CORSMiddleware(
            outer,
            allow_origins=list(policy.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return outer


async def _disconnected(receive: Any) -> None:
    """Returns when the client has gone (the request's body is read by then: what remains is the disconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def serve(service: Service, host: str, port: int, policy: Policy | None = None, on_ready: Any = None) -> None:
    """Run until SIGTERM or Ctrl-C; a request in flight finishes first (uvicorn's graceful shutdown)."""
    import uvicorn

    config = uvicorn.Config(
        create_app(service, policy),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if on_ready is not None:
        original = server.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            on_ready(server)

        server.startup = startup  # type: ignore[method-assign]
    with _stopped_by_signals_quietly():
        server.run()


@contextlib.contextmanager
def _stopped_by_signals_quietly() -> Iterator[None]:
    """After its graceful shutdown, uvicorn raises the signal that stopped it again with the handler it found,
    which kills the process (exit 143 for SIGTERM) before `logo serve` can say it stopped. With a handler that
    does nothing there, a signal that stopped the server ends `serve` normally (exit 0)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stopping}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
