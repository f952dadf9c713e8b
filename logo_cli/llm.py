"""Generators: a protocol, the in-process llama.cpp backend (loaded once per process), and a fake for tests.

Prompts are chat messages rendered with the model's own chat template (from the GGUF metadata), so token
counts are exact and a constant system message forms a prefix llama.cpp can reuse between questions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ModelError, UsageError

if TYPE_CHECKING:
    from .config import Settings

Message = dict[str, str]
FAKE_MODEL = "fake"
GGUF_MAGIC = b"GGUF"
REPEAT_PENALTY = 1.3  # small models loop on a phrase without it (seen with SmolLM2-135M at 1.0)
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Generator(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def render(self, messages: Sequence[Message]) -> str: ...

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]: ...

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]: ...


@dataclass
class Score:
    """How likely the model finds a continuation as the start of its answer."""

    logprob: float  # sum over the continuation's tokens
    tokens: int

    @property
    def mean(self) -> float:
        return self.logprob / max(self.tokens, 1)


class FakeGenerator:
    """Answers by quoting the question: deterministic and instant, for tests that do not test the model."""

    id = FAKE_MODEL
    n_ctx = 2048

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def render(self, messages: Sequence[Message]) -> str:
        return "\n".join(f"<{m['role']}>\n{m['content']}" for m in messages) + "\n<assistant>\n"

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]:
        usage.prompt_tokens = self.count_tokens(self.render(messages))
        words = ("Fake answer to: " + messages[-1]["content"].splitlines()[-1]).split()[:max_tokens]
        for word in words:
            usage.completion_tokens += 1
            yield word + " "

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        """Deterministic stand-in: a continuation scores by how many of its words the prompt mentions."""
        prompt = self.render(messages).lower()
        usage.prompt_tokens = self.count_tokens(prompt)
        out = []
        for text in continuations:
            words = text.lower().split() or [""]
            out.append(Score(float(sum(w in prompt for w in words)) - len(words), len(words)))
        return out


class LlamaCppGenerator:
    """A GGUF model run in process by llama-cpp-python."""

    def __init__(self, path: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        check_gguf(path)
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ModelError("llama-cpp-python is not installed.", "Run `make setup`.") from exc
        threads = n_threads or os.cpu_count() or 1  # llama-cpp-python defaults to half the cores
        try:
            self._llm: Any = Llama(
                model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False
            )
        except Exception as exc:
            raise ModelError(f"{path}: llama.cpp could not load this model: {exc}") from exc
        close_at_exit(self._llm)
        self.path = path
        self.n_ctx = n_ctx
        name = self._llm.metadata.get("general.name") or Path(path).stem
        self.id = f"llama.cpp:{Path(path).name}" if name == Path(path).stem else f"llama.cpp:{Path(path).name} ({name})"
        self._template = self._chat_template()

    def _chat_template(self) -> Any:
        return compile_template(self._llm.metadata.get("tokenizer.chat_template") or CHATML)

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, messages: Sequence[Message]) -> str:
        return str(
            self._template.render(messages=list(messages), add_generation_prompt=True, bos_token="", eos_token="")
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]:
        tokens = self._llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True)
        usage.prompt_tokens = len(tokens)
        if len(tokens) >= self.n_ctx:
            raise UsageError(
                f"The prompt ({len(tokens)} tokens) does not fit the model's context ({self.n_ctx} tokens).",
                "Shorten the question, or raise LOGO_CTX if the model supports a longer context.",
            )
        if len(tokens) + max_tokens > self.n_ctx:
            max_tokens = max(self.n_ctx - len(tokens), 1)
        chunks = self._llm.create_completion(
            prompt=tokens,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            stream=True,
            stop=["<|im_end|>", "<|endoftext|>"],
            repeat_penalty=REPEAT_PENALTY,
        )
        for chunk in chunks:
            usage.completion_tokens += 1
            text = chunk["choices"][0]["text"]
            if text:
                yield text

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        """Log-likelihood of each continuation as the answer. The prompt is evaluated once (reusing the KV
        cache of the previous call's shared head), then the continuations' common prefix once, then each
        continuation's own tokens from that position (llama.cpp trims the cache back between them)."""
        import numpy as np

        llm = self._llm
        tokens = llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True)
        usage.prompt_tokens = len(tokens)
        pieces = [llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) for text in continuations]
        if len(tokens) + max((len(p) for p in pieces), default=0) + 8 >= self.n_ctx:
            raise UsageError(f"The prompt ({len(tokens)} tokens) does not fit the model's context ({self.n_ctx}).")
        vocab = llm.n_vocab()

        def last_logprobs() -> np.ndarray:  # llama-cpp-python keeps no logits without logits_all: read llama.cpp's
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(vocab,)).astype(np.float64)
            logits -= logits.max()
            logprobs: np.ndarray = logits - np.log(np.exp(logits).sum())
            return logprobs

        reused = 0  # the head shared with what the cache holds (the system prompt, between questions)
        cached = llm.input_ids[: llm.n_tokens]
        while reused < min(len(cached), len(tokens) - 1) and cached[reused] == tokens[reused]:
            reused += 1
        llm.n_tokens = reused
        llm.eval(tokens[reused:])
        logprobs, shared_total = last_logprobs(), 0.0
        shortest = min((len(p) for p in pieces), default=0)
        prefix = 0
        while prefix < shortest - 1 and all(p[prefix] == pieces[0][prefix] for p in pieces):
            shared_total += float(logprobs[pieces[0][prefix]])
            llm.eval([pieces[0][prefix]])
            logprobs = last_logprobs()
            prefix += 1
        base, first = llm.n_tokens, logprobs
        results = []
        for own in pieces:
            total, logprobs = shared_total, first
            llm.n_tokens = base
            for i, token in enumerate(own[prefix:], start=prefix):
                total += float(logprobs[token])
                if i + 1 < len(own):
                    llm.eval([token])
                    logprobs = last_logprobs()
            results.append(Score(total, len(own)))
        llm.n_tokens = base
        return results


def compile_template(source: str) -> Any:
    """A GGUF's chat template (Jinja), in a sandbox: the template comes from the model file."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(source)


def close_at_exit(llm: Any) -> None:
    """Free a llama.cpp model before interpreter shutdown: left to the garbage collector then,
    llama-cpp-python's `__del__` runs after its C bindings are gone and prints a TypeError."""
    import atexit
    import weakref

    ref = weakref.ref(llm)

    def close() -> None:
        obj = ref()
        if obj is not None:
            obj.close()

    atexit.register(close)


def check_gguf(path: str) -> None:
    """Fail before any work when the file is missing or is not a GGUF."""
    file = Path(path)
    if not file.is_file():
        raise ModelError(f"{path}: no such model file.", "Pass --model PATH to a local .gguf file.")
    with file.open("rb") as fh:
        if fh.read(4) != GGUF_MAGIC:
            raise ModelError(f"{path}: not a GGUF file.", "llama.cpp needs a .gguf model; convert or download one.")


_CACHE: dict[tuple[str, int, int | None], Generator] = {}


def generator_for(settings: Settings) -> Generator:
    """The generator the settings name: an OpenAI-compatible server when `llm_url` is set, otherwise the GGUF
    (or `fake`) in process. Loaded once per process."""
    if settings.llm_url:
        from .llm_remote import load_remote

        return load_remote(settings)
    return load_generator(settings.model_path(), n_ctx=settings.n_ctx, n_threads=settings.n_threads)


def load_generator(path: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> Generator:
    """`fake` for the test generator, otherwise a GGUF path. Loaded once per process."""
    key = (path, n_ctx, n_threads)
    if key not in _CACHE:
        _CACHE[key] = (
            FakeGenerator() if path == FAKE_MODEL else LlamaCppGenerator(path, n_ctx=n_ctx, n_threads=n_threads)
        )
    return _CACHE[key]
