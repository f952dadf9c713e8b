"""How a remote generator counts tokens before anything is sent, and which chat template renders its prompts.

In order of preference:

1. `gguf`: a local GGUF of the served model, loaded vocab-only (no weights, no compute): exact counts, and
   its chat template renders prompts.
2. `server`: the server's own tokenizer (`POST /tokenize` of llama-server and vLLM, `POST
   /extras/tokenize/count` of llama-cpp-python's server): exact counts, one request per distinct text (cached).
3. `estimate`: ceil(characters / 4), when the server offers no tokenizer (Ollama).

Without a GGUF, prompts are rendered with ChatML (the server's own template applies to chat requests).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..base import ChatTemplate
from ..gguf import load_llama
from .http import ServerAPI

TOKENIZE_ENDPOINTS = ("/tokenize", "/extras/tokenize/count")
TOKENIZE_CACHE = 4096


class Tokenizer(Protocol):
    @property
    def name(self) -> str:
        """`gguf:<file>`, `server:<endpoint>` or `estimate`."""
        ...

    @property
    def exact(self) -> bool: ...

    @property
    def template(self) -> ChatTemplate: ...

    def count(self, text: str) -> int: ...


def estimate(text: str) -> int:
    return math.ceil(len(text) / 4)


class EstimateTokenizer:
    name = "estimate"
    exact = False

    def __init__(self) -> None:
        self.template = ChatTemplate()

    def count(self, text: str) -> int:
        return estimate(text)


class ServerTokenizer:
    """The server's tokenizer at `endpoint`, one request per distinct text (the last TOKENIZE_CACHE cached)."""

    exact = True

    def __init__(self, api: ServerAPI, endpoint: str) -> None:
        self.api = api
        self.endpoint = endpoint
        self.name = f"server:{endpoint}"
        self.template = ChatTemplate()
        self._counts: dict[str, int] = {}

    def count(self, text: str) -> int:
        if text not in self._counts:
            count = server_count(self.api, self.endpoint, text)
            if len(self._counts) >= TOKENIZE_CACHE:
                self._counts.clear()
            self._counts[text] = count if count is not None else estimate(text)
        return self._counts[text]


class GgufTokenizer:
    """A local GGUF's vocabulary (llama.cpp, vocab only: no weights) and chat template."""

    exact = True

    def __init__(self, path: str) -> None:
        with _quiet_stderr():  # llama.cpp warns from C about the (unused) context of a vocab-only model
            self._vocab: Any = load_llama(
                path, failure="llama.cpp could not read this model's vocabulary", vocab_only=True
            )
        self.name = f"gguf:{Path(path).name}"
        self.template = ChatTemplate.from_metadata(self._vocab.metadata)

    def count(self, text: str) -> int:
        return len(self._vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))


def choose_tokenizer(api: ServerAPI, gguf: str | None, *, named: bool, served: Callable[[], str]) -> Tokenizer:
    """The GGUF when the user named it or the server serves it (`served()` asks for the served model's
    name only then), else the server's tokenizer if it has one, else the estimate."""
    if gguf and (named or same_model(served(), gguf)):
        return GgufTokenizer(gguf)
    for endpoint in TOKENIZE_ENDPOINTS:
        if server_count(api, endpoint, "a") is not None:
            return ServerTokenizer(api, endpoint)
    return EstimateTokenizer()


def server_count(api: ServerAPI, endpoint: str, text: str) -> int | None:
    """Tokens by the server's tokenizer; None when it has no such endpoint. `/tokenize` reads `content` in
    llama-server and `prompt` in vLLM; `/extras/tokenize/count` is llama-cpp-python's."""
    body = {"content": text, "prompt": text} if endpoint == "/tokenize" else {"input": text}
    answer = api.post_extra(endpoint, body)
    if isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
        return len(answer["tokens"])
    if isinstance(answer, dict) and isinstance(answer.get("count"), int):
        return int(answer["count"])
    return None


def same_model(served: str, gguf: str) -> bool:
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
