"""What `logo --server URL` commands use: the same requests a script would send, with `$LOGO_TOKEN` as the
bearer token, and the server's errors turned back into the LogoErrors (and so the exit codes) the command
would have given in process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from ..errors import ExitCode, LogoError, StoreError

TIMEOUT = 600.0  # an answer can take a while on a slow model; a request that waits for the lock longer
TOKEN_ENV = "LOGO_TOKEN"
INGEST_PIECE = 1 << 20  # bytes of records per ingest request: well under the server's body limit, and a turn
# short enough (seconds) that other requests get theirs between two pieces of a large file


class ServerError(LogoError):
    """An error the server reported, with the exit code it stands for."""

    def __init__(self, message: str, hint: str | None, code: int) -> None:
        super().__init__(message, hint)
        self.summary: dict[str, Any] | None = None  # an ingest's partial summary, when one stopped
        self.offset = 0  # an ingest piece's first line, in the file it came from
        try:
            self.exit_code = ExitCode(code)
        except ValueError:
            self.exit_code = ExitCode.ERROR


class ServerClient:
    """One keep-alive connection from the standard library's http.client: a command sends one to a few
    requests, so importing an HTTP stack (httpx brings rich and pygments along: about 0.1 s) would cost more
    than the requests themselves."""

    def __init__(self, url: str, token: str | None = None) -> None:
        from urllib.parse import urlsplit

        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        self.url = url.rstrip("/")
        parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
        try:
            port = parts.port
        except ValueError:  # not a number, or out of range
            port = -1
        # without a scheme, HOST:PORT: `logo serve` has no standard port, so a bare word is a mistake (`notaurl`)
        bare = port is None and "://" not in self.url
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or bare:
            from ..errors import UsageError

            raise UsageError(
                f"--server {url!r} is not the URL of a logo server: give http://HOST:PORT (or HOST:PORT).",
                "For example --server http://127.0.0.1:8765: the url `logo serve` prints (LOGO_SERVER takes the same).",
            )
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, port
        self._prefix = parts.path.rstrip("/")
        self._connection: Any = None

    def _unreachable(self, exc: Exception) -> StoreError:
        self._connection = None
        return StoreError(
            f"{self.url}: cannot reach the logo server: {exc}", "Start it with `logo serve`, or drop --server."
        )

    def _open(self, method: str, path: str, params: dict[str, Any] | None, content: bytes | None) -> Any:
        import http.client
        from urllib.parse import urlencode

        target = self._prefix + path + (f"?{urlencode(params)}" if params else "")
        headers = {"Content-Type": "application/json"} if content is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):  # a kept-alive connection the server has since closed is retried once
            try:
                if self._connection is None:
                    kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
                    self._connection = kind(self._host, self._port, timeout=5.0)
                    self._connection.connect()
                    self._connection.sock.settimeout(TIMEOUT)  # 5 s to connect, then an answer may take long
                self._connection.request(method, target, body=content, headers=headers)
                return self._connection.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._connection = None
                if attempt:
                    raise self._unreachable(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                raise self._unreachable(exc) from None
        raise AssertionError("unreachable")

    def _check(self, response: Any) -> None:
        if response.status < 400:
            return
        try:
            body = orjson.loads(response.read())
        except orjson.JSONDecodeError:
            body = {}
        if isinstance(body, dict) and "error" in body:
            error = ServerError(str(body["error"]), body.get("hint"), int(body.get("exit_code", 1)))
            error.summary = body.get("summary")
            raise error
        raise ServerError(f"{self.url}: HTTP {response.status}", None, int(ExitCode.ERROR))

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, content: bytes | None = None
    ) -> Any:
        response = self._open(method, path, params, content)
        self._check(response)
        try:
            return orjson.loads(response.read())
        except OSError as exc:
            raise self._unreachable(exc) from None

    def _lines(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, content: bytes | None = None
    ) -> Iterator[dict[str, Any]]:
        response = self._open(method, path, params, content)
        self._check(response)
        try:
            for line in response:  # http.client undoes the chunked encoding; each JSON line as it comes
                if line.strip():
                    item = orjson.loads(line)
                    if isinstance(item, dict) and "error" in item and "exit_code" in item:
                        raise ServerError(str(item["error"]), item.get("hint"), int(item["exit_code"]))
                    yield item
        except OSError as exc:
            raise self._unreachable(exc) from None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/health")
        return result

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/ask", content=orjson.dumps(body))
        return result

    def ask_stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """{"token": ...} pieces, then {"answer": ...}."""
        return self._lines("POST", "/ask", params={"stream": "true"}, content=orjson.dumps(body))

    def ask_batch(self, questions: list[Any], defaults: dict[str, Any]) -> Iterator[dict[str, Any]]:
        payload = orjson.dumps({"questions": questions, "defaults": defaults})
        return self._lines("POST", "/ask/batch", content=payload)

    def ingest(self, stream: BinaryIO, *, skip_invalid: bool, batch_size: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """(lines before the piece, its summary) for each piece of about INGEST_PIECE bytes, cut at line ends:
        one request each. A server error names the piece's line, counted from the piece."""
        params = {"skip_invalid": str(skip_invalid).lower(), "batch_size": str(batch_size)}
        offset = 0
        for piece in pieces(stream, INGEST_PIECE):
            try:
                result: dict[str, Any] = self._request("POST", "/ingest", params=params, content=piece)
            except ServerError as exc:
                exc.offset = offset
                raise
            yield offset, result
            offset += piece.count(b"\n")

    def users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/users")
        return result

    def profile(self, user: str, at: str | None, thresholds: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {"user": user, **thresholds, **({"at": at} if at is not None else {})}
        result: dict[str, Any] = self._request("GET", "/profile", params=params)
        return result


def pieces(stream: BinaryIO, size: int) -> Iterator[bytes]:
    """The stream in pieces of about `size` bytes, each ending at a line end (a longer line is one piece)."""
    rest = b""
    while True:
        block = stream.read(size)
        if not block:
            break
        rest += block
        cut = rest.rfind(b"\n")
        if cut < 0 or len(rest) < size:
            continue
        yield rest[: cut + 1]
        rest = rest[cut + 1 :]
    if rest:
        yield rest
