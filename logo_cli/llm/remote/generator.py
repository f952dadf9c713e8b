"""RemoteGenerator: a model served over HTTP with the OpenAI API, as a Generator. It owns the identity of
the served model and the streaming of answers; HTTP (`http.py`), token counts (`tokenizers.py`) and echo
scoring (`scoring.py`) are delegated."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...cancel import checkpoint
from ...errors import ModelError
from ..base import FAKE_MODEL, REPEAT_PENALTY, STOP, Message, Score, Usage, fit_context
from ..gguf import check_gguf
from .http import API_KEY_ENV, HTTPStatus, ServerAPI
from .scoring import Unscorable, cannot_score, continuation_score, echo_request
from .tokenizers import Tokenizer, choose_tokenizer, same_model

if TYPE_CHECKING:
    from ...config import Settings


class RemoteGenerator:
    """A model served over HTTP with the OpenAI API. Nothing is sent until a call needs the server."""

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
        self.api = ServerAPI(url, api_key=api_key)
        self.base = self.api.base
        self.root = self.api.root
        self.n_ctx = n_ctx
        self._model = model
        self._gguf = gguf
        self._gguf_named = gguf_named
        self._tokenizer: Tokenizer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteGenerator:
        """The server `settings.llm_url` names. LOGO_MODEL names the served model, or, when it is a local
        file, the GGUF that tokenizes; naming nothing, the packaged GGUF tokenizes if the server serves it."""
        gguf, named = _local_gguf(settings)
        return cls(
            settings.llm_url,
            model=_served_name_hint(settings),
            n_ctx=settings.n_ctx,
            gguf=gguf,
            gguf_named=named,
            api_key=os.environ.get(API_KEY_ENV) or None,
        )

    # ------------------------------------------------------------------------------------------ identity

    @property
    def model(self) -> str:
        """The served model's name: LOGO_MODEL when it names one, else the server's (first) model."""
        if not self._model:
            self._model = self._pick_model(self.api.list_models())
        return self._model

    @property
    def id(self) -> str:
        return f"openai:{self.model} @ {self.base}"

    def _pick_model(self, ids: list[str]) -> str:
        """The first model, unless a local GGUF names one of them (a server of several models)."""
        if self._gguf:
            for served in ids:
                if same_model(served, self._gguf):
                    return served
        return ids[0]

    # ------------------------------------------------------------------------------------- tokenization

    @property
    def tokenizer(self) -> str:
        """Which tokenizer counts tokens: `gguf:<file>`, `server:<endpoint>` or `estimate` (see tokenizers.py)."""
        return self._tokens.name

    @property
    def exact(self) -> bool:
        return self._tokens.exact

    @property
    def _tokens(self) -> Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = choose_tokenizer(self.api, self._gguf, named=self._gguf_named, served=lambda: self.model)
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return self._tokens.count(text)

    def render(self, messages: Sequence[Message]) -> str:
        return self._tokens.template.render(messages)

    # ---------------------------------------------------------------------------------------- generation

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]:
        usage.prompt_tokens = self.count_tokens(self.render(messages))
        if self.exact:  # an estimate could refuse a prompt that fits: the server decides then
            max_tokens = fit_context(usage.prompt_tokens, self.n_ctx, max_tokens)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            "stop": list(STOP),
            "stream_options": {"include_usage": True},
            "repeat_penalty": REPEAT_PENALTY,  # llama.cpp servers; others ignore it (or reject it: then dropped)
        }
        reported: dict[str, Any] | None = None
        events = self.api.post_events("/chat/completions", body)
        try:
            for chunk in events:
                checkpoint()  # leaving the loop closes the stream, which stops the server's generation
                if isinstance(chunk.get("usage"), dict):
                    reported = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
                    if text:
                        usage.completion_tokens += 1
                        yield str(text)
        finally:
            getattr(events, "close", lambda: None)()  # a generator: closing it closes the HTTP stream
        if reported:
            usage.prompt_tokens = int(reported.get("prompt_tokens") or usage.prompt_tokens)
            usage.completion_tokens = int(reported.get("completion_tokens") or usage.completion_tokens)

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        """Log-likelihood of each continuation as the answer, by echo (see scoring.py). One request per
        continuation."""
        prompt = self.render(messages)
        usage.prompt_tokens = self.count_tokens(prompt)
        results = []
        for text in continuations:
            try:
                answer = self.api.post_json("/completions", echo_request(self.model, prompt, text))
            except HTTPStatus as exc:
                said = cannot_score(self.base, f"HTTP {exc.upstream}: {exc.detail}")
                raise said.from_server(exc.upstream or 0) from None
            try:
                results.append(continuation_score(answer, text))
            except Unscorable as exc:
                raise cannot_score(self.base, str(exc)) from None
        return results


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
        from ...config import default_model_path

        return str(default_model_path()), False
    except ModelError:
        return None, False
