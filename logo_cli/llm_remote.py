"""Generation on an OpenAI-compatible server (`--llm-url` / LOGO_LLM_URL) instead of the GGUF in process.

Works with llama.cpp's `llama-server`, llama-cpp-python's server, vLLM and Ollama: answers stream from
`POST /v1/chat/completions`; candidates are scored with `POST /v1/completions` (`echo` + `logprobs`).

The mediator still counts tokens here, before anything is sent. Tokenization, in order of preference:

1. `gguf`: a local GGUF of the served model, loaded vocab-only (no weights, no compute): exact counts, and
   its chat template renders prompts. Used when LOGO_MODEL / --model names a GGUF file, or, when it names
   nothing, the packaged default GGUF if the server serves that same model.
2. `server`: the server's own tokenizer (`POST /tokenize` of llama-server and vLLM, `POST
   /extras/tokenize/count` of llama-cpp-python's server): exact counts, one request per distinct text (cached).
3. `estimate`: ceil(characters / 4), when the server offers no tokenizer (Ollama).

Without a GGUF, prompts for scoring are rendered with ChatML (the server's own template applies to chat
requests).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ModelError, UsageError
from .llm import (
    CHATML,
    FAKE_MODEL,
    REPEAT_PENALTY,
    Generator,
    Message,
    Score,
    Usage,
    check_gguf,
    close_at_exit,
    compile_template,
)

if TYPE_CHECKING:
    import httpx

    from .config import Settings

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 300.0
STOP = ["<|im_end|>", "<|endoftext|>"]
API_KEY_ENV = "LOGO_LLM_API_KEY"  # sent as `Authorization: Bearer ...` when set (vLLM/llama-server --api-key)
OPTIONAL_FIELDS = ("repeat_penalty", "stream_options")  # dropped if a strict server rejects them
START_HINT = "Start the server, or unset LOGO_LLM_URL (drop --llm-url) to run the GGUF in process."
SCORE_HINT = (
    "Rating and choice answers (and `logo eval`) score candidates: use the in-process model (unset "
    "LOGO_LLM_URL), start llama-cpp-python's server with `--logits_all true` (vLLM also returns prompt "
    "log-probabilities), or ask with --answer-type open."
)
TOKENIZE_CACHE = 4096


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


def _is_local_file(model: str) -> bool:
    """LOGO_MODEL names a local file (a GGUF for tokenization), not a served model such as `org/name`."""
    return Path(model).expanduser().is_file()


def _served_name_hint(settings: Settings) -> str:
    """LOGO_MODEL names the served model unless it is a local file (then it is only the tokenizer)."""
    model = settings.model
    return "" if not model or model == FAKE_MODEL or _is_local_file(model) else model


def _local_gguf(settings: Settings) -> tuple[str | None, bool]:
    """(a GGUF for tokenization, whether the user named it). Named: LOGO_MODEL / --model is a file."""
    model = settings.model
    if model and model != FAKE_MODEL and _is_local_file(model):
        path = str(Path(model).expanduser())
        check_gguf(path)  # a named file that is missing or not a GGUF is a mistake worth reporting
        return path, True
    if model:
        return None, False
    try:
        from .config import default_model_path

        return str(default_model_path()), False
    except ModelError:
        return None, False


class RemoteGenerator:
    """A model served over HTTP with the OpenAI API. One HTTP client, reused by every call."""

    def __init__(
        self,
        url: str,
        *,
        model: str = "",
        n_ctx: int = 2048,
        gguf: str | None = None,
        gguf_named: bool = True,
        api_key: str | None = None,
    ) -> None:
        self.base = normalize_url(url)
        self.root = self.base[: -len("/v1")]
        self.n_ctx = n_ctx
        self._model = model
        self._gguf = gguf
        self._gguf_named = gguf_named
        self._api_key = api_key
        self._client: httpx.Client | None = None
        self._vocab: Any = None  # llama_cpp.Llama(vocab_only=True)
        self._template: Any = None
        self._tokenizer: str | None = None  # "gguf:<file>", "server:<endpoint>" or "estimate"
        self._counts: dict[str, int] = {}
        self._optional_fields = True

    # ------------------------------------------------------------------------------------------ identity

    @property
    def model(self) -> str:
        """The served model's name: LOGO_MODEL when it names one, else the server's (first) model."""
        if not self._model:
            self._model = self._pick_model(self._list_models())
        return self._model

    @property
    def id(self) -> str:
        return f"openai:{self.model} @ {self.base}"

    def _list_models(self) -> list[str]:
        with self._request("GET", "/models") as response:
            body = self._json(response)
        data = body.get("data") if isinstance(body, dict) else None
        ids = [str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")]
        if not ids:
            raise ModelError(
                f"{self.base}: the LLM server lists no models at /models.",
                "Name the served model with --model NAME (or LOGO_MODEL).",
            )
        return ids

    def _pick_model(self, ids: list[str]) -> str:
        """The first model, unless a local GGUF names one of them (a server of several models)."""
        if self._gguf:
            for served in ids:
                if _same_model(served, self._gguf):
                    return served
        return ids[0]

    # ------------------------------------------------------------------------------------- tokenization

    @property
    def tokenizer(self) -> str:
        """Which tokenizer counts tokens: `gguf:<file>`, `server:<endpoint>` or `estimate` (see the module doc)."""
        if self._tokenizer is None:
            self._tokenizer = self._choose_tokenizer()
        return self._tokenizer

    @property
    def exact(self) -> bool:
        return self.tokenizer != "estimate"

    def _choose_tokenizer(self) -> str:
        if self._gguf and (self._gguf_named or self._serves(self._gguf)):
            self._load_vocab(self._gguf)
            return f"gguf:{Path(self._gguf).name}"
        for endpoint in ("/tokenize", "/extras/tokenize/count"):
            if self._server_count(endpoint, "a") is not None:
                return f"server:{endpoint}"
        return "estimate"

    def _serves(self, gguf: str) -> bool:
        """Whether the server serves this GGUF (so its vocabulary is the served model's)."""
        return _same_model(self.model, gguf)

    def _load_vocab(self, path: str) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError("llama-cpp-python is not installed.", "Run `make setup`.") from exc
        try:
            with _quiet_stderr():  # llama.cpp warns from C about the (unused) context of a vocab-only model
                self._vocab = Llama(model_path=path, vocab_only=True, verbose=False)
                close_at_exit(self._vocab)
        except Exception as exc:
            raise ModelError(f"{path}: llama.cpp could not read this model's vocabulary: {exc}") from exc
        self._template = compile_template(self._vocab.metadata.get("tokenizer.chat_template") or CHATML)

    def _server_count(self, endpoint: str, text: str) -> int | None:
        """Tokens by the server's tokenizer; None when it has no such endpoint. `/tokenize` reads `content` in
        llama-server and `prompt` in vLLM; `/extras/tokenize/count` is llama-cpp-python's."""
        import httpx

        body = {"content": text, "prompt": text} if endpoint == "/tokenize" else {"input": text}
        try:
            response = self.client.post(self.root + endpoint, json=body)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code != 200:
            return None
        try:
            answer = response.json()
        except ValueError:
            return None
        if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
            return len(answer["tokens"])
        if isinstance(answer, dict) and isinstance(answer.get("count"), int):
            return int(answer["count"])
        return None

    def count_tokens(self, text: str) -> int:
        tokenizer = self.tokenizer
        if tokenizer.startswith("gguf:"):
            return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        if tokenizer == "estimate":
            return math.ceil(len(text) / 4)
        if text not in self._counts:
            endpoint = tokenizer.removeprefix("server:")
            count = self._server_count(endpoint, text)
            if len(self._counts) >= TOKENIZE_CACHE:
                self._counts.clear()
            self._counts[text] = count if count is not None else math.ceil(len(text) / 4)
        return self._counts[text]

    def render(self, messages: Sequence[Message]) -> str:
        if self.tokenizer.startswith("gguf:"):
            template = self._template
        else:
            if self._template is None:
                self._template = compile_template(CHATML)
            template = self._template
        return str(template.render(messages=list(messages), add_generation_prompt=True, bos_token="", eos_token=""))

    # ---------------------------------------------------------------------------------------- generation

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]:
        prompt_tokens = self.count_tokens(self.render(messages))
        usage.prompt_tokens = prompt_tokens
        if self.exact:
            if prompt_tokens >= self.n_ctx:
                raise UsageError(
                    f"The prompt ({prompt_tokens} tokens) does not fit the model's context ({self.n_ctx} tokens).",
                    "Shorten the question, or raise LOGO_CTX if the served model has a longer context.",
                )
            max_tokens = max(min(max_tokens, self.n_ctx - prompt_tokens), 1)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            "stop": STOP,
            "stream_options": {"include_usage": True},
            "repeat_penalty": REPEAT_PENALTY,  # llama.cpp servers; others ignore it (or reject it: then dropped)
        }
        reported: dict[str, Any] | None = None
        with self._request("POST", "/chat/completions", body, stream=True) as response:
            for chunk in self._events(response):
                if isinstance(chunk.get("usage"), dict):
                    reported = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
                    if text:
                        usage.completion_tokens += 1
                        yield str(text)
        if reported:
            usage.prompt_tokens = int(reported.get("prompt_tokens") or usage.prompt_tokens)
            usage.completion_tokens = int(reported.get("completion_tokens") or usage.completion_tokens)

    def _events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        """The JSON objects of a server-sent event stream, until `[DONE]`."""
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
                    raise ModelError(f"{self.base}: the LLM server sent a malformed event: {data[:200]}") from exc
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("error"):
                    raise ModelError(f"{self.base}: the LLM server failed mid-answer: {_error_text(chunk)}")
                yield chunk
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    # ------------------------------------------------------------------------------------------- scoring

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        """Log-likelihood of each continuation as the answer: the prompt + continuation is echoed back by
        `/v1/completions` with each token's log-probability; the continuation's tokens are the last ones
        before the one generated token. One request per continuation."""
        prompt = self.render(messages)
        usage.prompt_tokens = self.count_tokens(prompt)
        results = []
        for text in continuations:
            body: dict[str, Any] = {
                "model": self.model,
                "prompt": prompt + text,
                "max_tokens": 1,
                "temperature": 0.0,
                "seed": 0,
                "echo": True,
                "logprobs": 1,
            }
            try:
                with self._request("POST", "/completions", body) as response:
                    answer = self._json(response)
            except _HTTPStatus as exc:
                raise ModelError(
                    f"{self.base}: this LLM server can't score candidates (HTTP {exc.status}: {exc.detail}).",
                    SCORE_HINT,
                ) from None
            results.append(self._continuation_score(answer, text))
        return results

    def _continuation_score(self, answer: Any, continuation: str) -> Score:
        def cannot(why: str) -> ModelError:
            return ModelError(f"{self.base}: this LLM server can't score candidates ({why}).", SCORE_HINT)

        choices = answer.get("choices") if isinstance(answer, dict) else None
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict):
            raise cannot("it returned no log-probabilities")
        values, offsets = logprobs.get("token_logprobs"), logprobs.get("text_offset")
        tokens = logprobs.get("tokens") or []
        if not isinstance(values, list) or not isinstance(offsets, list) or len(values) != len(offsets):
            raise cannot("it returned no log-probabilities of the prompt's tokens")
        reported = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        generated = reported.get("completion_tokens")
        if not isinstance(generated, int):
            generated = 0 if str(choice.get("text", "")).endswith(continuation) else 1
        echoed = len(values) - generated  # the prompt's tokens (some servers leave out BOS tokens)
        if echoed < 2:
            raise cannot("it did not echo the prompt's log-probabilities")
        if echoed < len(offsets):
            end = int(offsets[echoed])  # where the generated token starts
        elif len(tokens) >= echoed:
            end = int(offsets[echoed - 1]) + len(str(tokens[echoed - 1]))
        else:
            raise cannot("it returned no token texts")
        start = end - len(continuation)
        total, count = 0.0, 0
        for i in range(echoed):
            token_end = int(offsets[i + 1]) if i + 1 < len(offsets) else end
            if token_end <= start:
                continue
            if not isinstance(values[i], int | float):
                raise cannot("a token of the continuation has no log-probability")
            total += float(values[i])
            count += 1
        if count == 0 or start < int(offsets[0]) or not math.isfinite(total):
            raise cannot("its echoed offsets do not cover the candidate")
        return Score(total, count)

    # -------------------------------------------------------------------------------------------- HTTP

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.Client(
                timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), headers=headers
            )
        return self._client

    @contextmanager
    def _request(
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
                raise self._transport_error(exc) from exc
            try:
                if response.status_code >= 400:
                    try:
                        response.read()
                    except httpx.HTTPError as exc:
                        raise self._transport_error(exc) from exc
                    detail = _error_text(_maybe_json(response))
                    rejected = [k for k in OPTIONAL_FIELDS if body is not None and k in body and k in detail]
                    if response.status_code in (400, 422) and self._optional_fields and rejected:
                        self._optional_fields = False  # a strict server: never send them again
                        continue
                    raise _HTTPStatus(self.base, path, response.status_code, detail)
                yield response
                return
            finally:
                response.close()

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ModelError(f"{self.base}: the LLM server answered with something that is not JSON.") from exc

    def _transport_error(self, exc: Exception) -> ModelError:
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


class _HTTPStatus(ModelError):
    """An HTTP error answer; a ModelError that names the URL, the status and the server's reason."""

    def __init__(self, base: str, path: str, status: int, detail: str) -> None:
        if status == 404:
            hint = f"Check --llm-url: logo expects an OpenAI-compatible API at {base} (it asked {base}{path})."
        elif status in (401, 403):
            hint = f"The server wants an API key: set {API_KEY_ENV}."
        else:
            hint = "Check the server's log."
        super().__init__(f"{base}: the LLM server answered HTTP {status} to {path}: {detail}", hint)
        self.status = status
        self.detail = detail


def _maybe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _error_text(body: Any) -> str:
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


def _same_model(served: str, gguf: str) -> bool:
    """Whether a served model id names this GGUF: its path, file name, or file stem without the quantization."""
    served_l = served.lower()
    file = Path(gguf)
    names = {file.name.lower(), file.stem.lower(), file.stem.lower().split(".")[0]}
    return served == gguf or any(name and name in served_l for name in names)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C code writes there directly) for the duration."""
    import sys

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real descriptor (an in-memory stream): nothing to do
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


_CACHE: dict[tuple[str, str, int], Generator] = {}


def load_remote(settings: Settings) -> Generator:
    """The server `settings.llm_url` names, as a Generator. One per (url, model, n_ctx) per process; nothing
    is sent until the first call that needs the server."""
    base = normalize_url(settings.llm_url)
    key = (base, settings.model, settings.n_ctx)
    if key not in _CACHE:
        gguf, named = _local_gguf(settings)
        _CACHE[key] = RemoteGenerator(
            base,
            model=_served_name_hint(settings),
            n_ctx=settings.n_ctx,
            gguf=gguf,
            gguf_named=named,
            api_key=os.environ.get(API_KEY_ENV) or None,
        )
    return _CACHE[key]
