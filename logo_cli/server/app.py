"""The HTTP routes of `logo serve` (FastAPI). Every body and answer is the JSON the CLI reads and prints:

    GET  /health                      uptime, requests, whether global memory exists
    POST /ask                         {user, query, ...ask's options}: one answer, as `logo ask --json`
    POST /ask?stream=true             JSON lines: {"token": ...} while an open answer is generated, then
                                      {"answer": {...}} (or {"error": ...})
    POST /ask/batch                   {"questions": [{user, query, ...}], "defaults": {...}}: JSON lines,
                                      one answer per question, as `logo ask -`
    POST /ingest?skip_invalid=&batch_size=   a JSONL body of records: the summary, as `logo ingest`
    GET  /users                       as `logo users --json`
    GET  /profile?user=U&at=T         as `logo profile --json`

Errors are {"error", "hint", "exit_code"} with the status the exit code maps to: 400 usage, 422 bad data,
404 not found, 409 busy (another logo process kept the store past the server's --wait), 500 otherwise.
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at definition time,
# and Request/Response are imported inside create_app (fastapi loads only when serving).
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import orjson

from ..errors import ExitCode, LogoError
from .service import Service

STATUS = {
    ExitCode.USAGE: 400,
    ExitCode.BAD_DATA: 422,
    ExitCode.NOT_FOUND: 404,
    ExitCode.BUSY: 409,
    ExitCode.MODEL: 500,
    ExitCode.STORE: 500,
    ExitCode.ERROR: 500,
}


def error_body(exc: LogoError) -> dict[str, Any]:
    body = {"error": exc.message, "hint": exc.hint, "exit_code": int(exc.exit_code)}
    summary = getattr(exc, "summary", None)
    if summary is not None:  # an ingest stopped by a bad line: what it stored before it
        body["summary"] = summary.to_json()
    return body


def create_app(service: Service) -> Any:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse

    app = FastAPI(title="logo", description=__doc__, version=service.health()["version"])

    def json_response(obj: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS), status, media_type="application/json")

    def lines(items: Iterator[dict[str, Any]]) -> Iterator[bytes]:
        try:
            for item in items:
                yield orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        except LogoError as exc:  # after the first line the status is sent: the error is the last line
            yield orjson.dumps(error_body(exc)) + b"\n"
        except Exception as exc:  # a bug: said as such (exit 1), not as a dropped connection
            yield orjson.dumps({"error": f"{type(exc).__name__}: {exc}", "hint": None, "exit_code": 1}) + b"\n"

    @app.exception_handler(LogoError)
    async def logo_error(_: Request, exc: LogoError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=STATUS.get(exc.exit_code, 500))

    async def body_of(request: Request) -> Any:
        from ..errors import UsageError

        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"The request body is not JSON: {exc}") from None

    @app.get("/health")
    def health() -> Response:
        return json_response(service.health())

    @app.post("/ask")
    async def ask(request: Request, stream: bool = False) -> Response:
        from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

        body = await body_of(request)
        if not isinstance(body, dict):
            from ..errors import UsageError

            raise UsageError("expected a JSON object")
        if stream:
            service.question(body)  # a bad question is a 4xx before the stream starts
            return StreamingResponse(
                iterate_in_threadpool(lines(service.ask_stream(body))), media_type="application/x-ndjson"
            )
        return json_response(await run_in_threadpool(service.ask, body))

    @app.post("/ask/batch")
    async def ask_batch(request: Request) -> Response:
        from starlette.concurrency import iterate_in_threadpool

        from ..errors import UsageError

        body = await body_of(request)
        if not isinstance(body, dict) or not isinstance(body.get("questions"), list):
            raise UsageError('expected {"questions": [...], "defaults": {...}}')
        batch = service.batch(body["questions"], body.get("defaults") or {})  # a bad line: 4xx, nothing answered
        answers = lines(service.answer_batch(batch))
        return StreamingResponse(iterate_in_threadpool(answers), media_type="application/x-ndjson")

    @app.post("/ingest")
    async def ingest(request: Request, skip_invalid: bool = False, batch_size: int = 2048) -> Response:
        import io

        from starlette.concurrency import run_in_threadpool

        data = await request.body()
        summary = await run_in_threadpool(
            service.ingest, io.BytesIO(data), skip_invalid=skip_invalid, batch_size=batch_size
        )
        return json_response(summary)

    @app.get("/users")
    def users() -> Response:
        return json_response(service.users())

    @app.get("/profile")
    def profile(
        user: str,
        at: str | None = None,
        cold_start_max: int = 3,
        biased_min_history: int = 20,
        biased_max_diversity: float = 0.7,
    ) -> Response:
        thresholds = {
            "cold_start_max": cold_start_max,
            "biased_min_history": biased_min_history,
            "biased_max_diversity": biased_max_diversity,
        }
        return json_response(service.profile(user, at, **thresholds))

    return app


def serve(service: Service, host: str, port: int, on_ready: Any = None) -> None:
    """Run until SIGTERM or Ctrl-C; a request in flight finishes first (uvicorn's graceful shutdown)."""
    import uvicorn

    config = uvicorn.Config(create_app(service), host=host, port=port, log_level="warning", access_log=False)
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
