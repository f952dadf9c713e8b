"""What `logo --server URL` commands use: the same requests a script would send, and the server's errors
turned back into the LogoErrors (and so the exit codes) the command would have given in process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

from ..errors import ExitCode, LogoError, StoreError

if TYPE_CHECKING:
    from ..mediator import MediatorOptions

TIMEOUT = 600.0  # an answer can take a while on a slow model; a request that waits for the lock longer


class ServerError(LogoError):
    """An error the server reported, with the exit code it stands for."""

    def __init__(self, message: str, hint: str | None, code: int) -> None:
        super().__init__(message, hint)
        self.summary: dict[str, Any] | None = None  # an ingest's partial summary, when one stopped
        try:
            self.exit_code = ExitCode(code)
        except ValueError:
            self.exit_code = ExitCode.ERROR


class ServerClient:
    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(TIMEOUT, connect=5.0))

    def _check(self, response: Any) -> None:
        if response.status_code < 400:
            return
        try:
            body = orjson.loads(response.read())
        except orjson.JSONDecodeError:
            body = {}
        if isinstance(body, dict) and "error" in body:
            error = ServerError(str(body["error"]), body.get("hint"), int(body.get("exit_code", 1)))
            error.summary = body.get("summary")
            raise error
        raise ServerError(f"{self.url}: HTTP {response.status_code}", None, int(ExitCode.ERROR))

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise StoreError(
                f"{self.url}: cannot reach the logo server: {exc}", "Start it with `logo serve`, or drop --server."
            ) from None
        self._check(response)
        return orjson.loads(response.content)

    def _lines(self, method: str, path: str, **kw: Any) -> Iterator[dict[str, Any]]:
        import httpx

        try:
            with self._http.stream(method, path, **kw) as response:
                self._check(response)
                for line in response.iter_lines():
                    if line.strip():
                        item = orjson.loads(line)
                        if isinstance(item, dict) and "error" in item and "exit_code" in item:
                            raise ServerError(str(item["error"]), item.get("hint"), int(item["exit_code"]))
                        yield item
        except httpx.TransportError as exc:
            raise StoreError(
                f"{self.url}: cannot reach the logo server: {exc}", "Start it with `logo serve`, or drop --server."
            ) from None

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

    def ingest(self, stream: BinaryIO, *, skip_invalid: bool, batch_size: int) -> dict[str, Any]:
        params = {"skip_invalid": str(skip_invalid).lower(), "batch_size": str(batch_size)}
        result: dict[str, Any] = self._request("POST", "/ingest", params=params, content=stream.read())
        return result

    def users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/users")
        return result

    def profile(self, user: str, at: str | None, options: MediatorOptions) -> dict[str, Any]:
        params: dict[str, Any] = {
            "user": user,
            "cold_start_max": options.cold_start_max,
            "biased_min_history": options.biased_min_history,
            "biased_max_diversity": options.biased_max_diversity,
            **({"at": at} if at is not None else {}),
        }
        result: dict[str, Any] = self._request("GET", "/profile", params=params)
        return result
