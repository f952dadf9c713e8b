"""The HTTP side of an OpenAI-compatible server: the URL, one reused httpx client, requests whose failures
become ModelErrors that name the URL (transport errors, HTTP error answers), JSON bodies and server-sent
event streams. Knows nothing of prompts, tokens or scores.

httpx is imported when the first request is made, not with this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ...errors import ModelError, UsageError

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 300.0
API_KEY_ENV = "LOGO_LLM_API_KEY"  # sent as `Authorization: Bearer ...` when set (vLLM/llama-server --api-key)
OPTIONAL_FIELDS = ("repeat_penalty", "stream_options")  # dropped if a strict server rejects them
START_HINT = "Start the server, or unset LOGO_LLM_URL (drop --llm-url) to run the GGUF in process."


def normalize_url(url: str) -> str:
    """The server's OpenAI-compatible base, ending in /v1: `host:port`, `http://host:port`, `.../v1` and a
    pasted endpoint (`.../v1/chat/completions`) all give `http://host:port/v1`."""
    raw = url.strip()
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--llm-url {url!r} is not an http(s) URL.", "Example: --llm-url http://127.0.0.1:8080/v1")
    path = parts.path.rstrip("/")
    for endpoint in ("/chat/completions", "/completions", "/models"):
        if path.endswith(endpoint):
            path = path[: -len(endpoint)]
            break
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class HTTPStatus(ModelError):
    """An HTTP error answer; a ModelError that names the URL, the status and the server's reason."""

    def __init__(self, base: str, path: str, status: int, detail: str) -> None:
        if status == 404:
            hint = f"Check --llm-url: logo expects an OpenAI-compatible API at {base} (it asked {base}{path})."
        elif status in (401, 403):
            hint = f"The server wants an API key: set {API_KEY_ENV}."
        else:
            hint = "Check the server's log."
        super().__init__(f"{base}: the LLM server answered HTTP {status} to {path}: {detail}", hint)
        self.upstream = status  # not `status`: the server's answer to its client is its own (500), not this one's
        self.detail = detail


class ServerAPI:
    """Requests to one server: `{base}{path}` for the OpenAI API (base ends in /v1), `{root}{path}` for the
    extras some servers add beside it (tokenizers). One httpx client, made on first use, reused."""

    def __init__(self, url: str, *, api_key: str | None = None) -> None:
        self.base = normalize_url(url)
        self.root = self.base[: -len("/v1")]
        self._api_key = api_key
        self._client: httpx.Client | None = None
        self._optional_fields = True

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.Client(
                timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), headers=headers
            )
        return self._client

    # ----------------------------------------------------------------------------------------- the calls

    def get_json(self, path: str) -> Any:
        with self.request("GET", path) as response:
            return self.json(response)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        with self.request("POST", path, body) as response:
            return self.json(response)

    def post_events(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON objects of the server-sent event stream a POST answers with, until `[DONE]`."""
        with self.request("POST", path, body, stream=True) as response:
            yield from self._events(response)

    def post_extra(self, endpoint: str, body: dict[str, Any]) -> Any | None:
        """`POST {root}{endpoint}`, an endpoint beside the OpenAI API that a server may lack: its JSON answer,
        or None when it answers with an error status or something that is not JSON."""
        import httpx

        try:
            response = self.client.post(self.root + endpoint, json=body)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def list_models(self) -> list[str]:
        """The ids of the models the server serves (`GET /models`), at least one."""
        body = self.get_json("/models")
        data = body.get("data") if isinstance(body, dict) else None
        ids = [str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")]
        if not ids:
            raise ModelError(
                f"{self.base}: the LLM server lists no models at /models.",
                "Name the served model with --model NAME (or LOGO_MODEL).",
            )
        return ids

    # -------------------------------------------------------------------------------------- the plumbing

    @contextmanager
    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, stream: bool = False
    ) -> Iterator[httpx.Response]:
        """One request to `{base}{path}` with an OK answer, else ModelError naming the URL. A 400/422 that
        names an optional field (a strict server rejecting it) is retried once without the optional fields."""
        import httpx

        while True:
            payload = body
            if body is not None and not self._optional_fields:
                payload = {k: v for k, v in body.items() if k not in OPTIONAL_FIELDS}
            try:
                request = self.client.build_request(method, self.base + path, json=payload)
                response = self.client.send(request, stream=stream)
            except httpx.HTTPError as exc:
                raise self.transport_error(exc) from exc
            try:
                if response.status_code >= 400:
                    try:
                        response.read()
                    except httpx.HTTPError as exc:
                        raise self.transport_error(exc) from exc
                    detail = error_text(_maybe_json(response))
                    rejected = [k for k in OPTIONAL_FIELDS if body is not None and k in body and k in detail]
                    if response.status_code in (400, 422) and self._optional_fields and rejected:
                        self._optional_fields = False  # a strict server: never send them again
                        continue
                    raise HTTPStatus(self.base, path, response.status_code, detail)
                yield response
                return
            finally:
                response.close()

    def json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ModelError(f"{self.base}: the LLM server answered with something that is not JSON.") from exc

    def _events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        import httpx

        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                if not data:
                    continue
                try:
                    chunk = json.loads(data)
                except ValueError as exc:
                    said = f"{self.base}: the LLM server sent a malformed event: {data[:200]}"
                    raise ModelError(said).from_server() from exc
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    said = f"{self.base}: the LLM server failed mid-answer: {error_text(chunk)}"
                    raise ModelError(said).from_server()
                yield chunk
        except httpx.HTTPError as exc:
            raise self.transport_error(exc) from exc

    def transport_error(self, exc: Exception) -> ModelError:
        import httpx

        if isinstance(exc, httpx.ConnectTimeout):
            why = f"no connection within {CONNECT_TIMEOUT_S:g} s"
        elif isinstance(exc, httpx.TimeoutException):
            return ModelError(
                f"{self.base}: the LLM server did not answer within {READ_TIMEOUT_S:g} s.",
                "The server may be overloaded or the prompt too long for it; check its log.",
            )
        elif isinstance(exc, httpx.RemoteProtocolError):
            return ModelError(f"{self.base}: the LLM server closed the connection ({_reason(exc)}).", START_HINT)
        else:
            why = _reason(exc)
        return ModelError(f"{self.base}: cannot reach the LLM server ({why})", START_HINT)


def _maybe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def error_text(body: Any) -> str:
    """The reason in an error answer: OpenAI's `{"error": {"message"}}`, FastAPI's `{"detail"}`, or text."""
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        body = error
    text = body if isinstance(body, str) else json.dumps(body)
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _reason(exc: Exception) -> str:
    """`[Errno 111] Connection refused` -> `Connection refused`."""
    text = str(exc) or type(exc).__name__
    return re.sub(r"^\[Errno -?\d+\]\s*", "", text)
