"""A GGUF model run in process by llama-cpp-python (the default backend).

Prompts are chat messages rendered with the model's own chat template (from the GGUF metadata), so token
counts are exact and a constant system message forms a prefix llama.cpp can reuse between questions.
llama_cpp and numpy are imported when a model is loaded or scored, not with this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cancel import checkpoint, current
from .base import REPEAT_PENALTY, STOP, ChatTemplate, Message, Score, Usage, fit_context
from .gguf import check_gguf, load_llama

if TYPE_CHECKING:
    import numpy as np

SCORE_SPARE = 8  # tokens kept free beyond the prompt and the longest continuation when scoring


class LlamaCppGenerator:
    """A GGUF model run in process by llama-cpp-python."""

    def __init__(self, path: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        check_gguf(path)
        threads = n_threads or os.cpu_count() or 1  # llama-cpp-python defaults to half the cores
        self._llm: Any = load_llama(
            path,
            failure="llama.cpp could not load this model",
            n_ctx=n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
        )
        self.path = path
        self.n_ctx = n_ctx
        name = self._llm.metadata.get("general.name") or Path(path).stem
        self.id = f"llama.cpp:{Path(path).name}" if name == Path(path).stem else f"llama.cpp:{Path(path).name} ({name})"
        self._template = ChatTemplate.from_metadata(self._llm.metadata)
        self._n_vocab: int = self._llm.n_vocab()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, messages: Sequence[Message]) -> str:
        return self._template.render(messages)

    def _prompt_tokens(self, messages: Sequence[Message]) -> list[int]:
        tokens: list[int] = self._llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True)
        return tokens

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float, seed: int, usage: Usage
    ) -> Iterator[str]:
        tokens = self._prompt_tokens(messages)
        usage.prompt_tokens = len(tokens)
        checkpoint()
        chunks = self._llm.create_completion(
            prompt=tokens,
            max_tokens=fit_context(len(tokens), self.n_ctx, max_tokens),
            temperature=temperature,
            seed=seed,
            stream=True,
            stop=list(STOP),
            repeat_penalty=REPEAT_PENALTY,
        )
        try:
            with self._interruptible():  # the prompt and each token: stopped between llama.cpp's graph nodes
                for chunk in chunks:
                    checkpoint()  # a server's client went away, or its time ran out: stop at this token
                    usage.completion_tokens += 1
                    text = chunk["choices"][0]["text"]
                    if text:
                        yield text
        finally:
            chunks.close()  # llama.cpp's state stays consistent: the next call reuses what it evaluated

    def score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        """Log-likelihood of each continuation as the answer. The prompt is evaluated once (reusing the KV
        cache of the previous call's shared head), then the continuations' tokens as a trie: each shared
        prefix once (`Rating: 3/5` and `Rating: 3.5/5` share `Rating: 3`), trimming llama.cpp's cache back to
        the branch point between siblings."""
        with self._interruptible():
            return self._score(messages, continuations, usage)

    def _score(self, messages: Sequence[Message], continuations: Sequence[str], usage: Usage) -> list[Score]:
        llm = self._llm
        tokens = self._prompt_tokens(messages)
        usage.prompt_tokens = len(tokens)
        pieces = [llm.tokenize(text.encode("utf-8"), add_bos=False, special=False) for text in continuations]
        longest = max((len(p) for p in pieces), default=0)
        fit_context(len(tokens), self.n_ctx, reserve=longest + SCORE_SPARE)

        reused = 0  # the head shared with what the cache holds (the system prompt, between questions)
        cached = llm.input_ids[: llm.n_tokens]
        while reused < min(len(cached), len(tokens) - 1) and cached[reused] == tokens[reused]:
            reused += 1
        llm.n_tokens = reused
        llm.eval(tokens[reused:])
        base = llm.n_tokens
        root = _Trie()
        for index, piece in enumerate(pieces):
            node = root
            for token in piece:
                node = node.children.setdefault(token, _Trie())
            node.ends.append(index)
        totals = [0.0] * len(pieces)

        def walk(node: _Trie, logprobs: np.ndarray, total: float, position: int) -> None:
            for token, child in node.children.items():
                chain, path = [token], [child]  # follow the branch while it does not fork: one decode for it
                while len(path[-1].children) == 1:
                    ((next_token, next_node),) = path[-1].children.items()
                    chain.append(next_token)
                    path.append(next_node)
                forks = bool(path[-1].children)  # only what continues past a token needs that token evaluated
                after = self._eval_each(chain if forks else chain[:-1], position)
                reached = total
                for k, (step, reached_node) in enumerate(zip(chain, path, strict=True)):
                    reached += float((logprobs if k == 0 else after[k - 1])[step])
                    for index in reached_node.ends:
                        totals[index] = reached
                if forks:
                    walk(path[-1], after[-1], reached, position + len(chain))

        walk(root, self._last_logprobs(), 0.0, base)
        # the logits now belong to the last candidate token: keep the prompt's head cached but not its last token,
        # so a generation from the same prompt evaluates that token again instead of sampling stale logits
        llm.n_tokens = base - 1
        return [Score(total, len(piece)) for total, piece in zip(totals, pieces, strict=True)]

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Inside a cancel scope (a server's request), llama.cpp asks between the nodes of each graph it computes
        whether to stop, so a prompt's evaluation, or one token on a busy machine (seconds when other processes
        take the cores), stops within a node of a disconnect or the time limit, as Cancelled. Outside a scope:
        nothing is installed."""
        scope = current()
        if scope is None:
            yield
            return
        import ctypes

        import llama_cpp

        flag = ctypes.create_string_buffer(2)  # b"\0\0": go on; b"\1\0": stop (see _flag_callback)

        def stop() -> None:
            flag[0] = b"\x01"

        undo = scope.on_stop(stop)
        context = self._llm._ctx.ctx
        llama_cpp.llama_set_abort_callback(context, _flag_callback(), ctypes.cast(flag, ctypes.c_void_p))
        try:
            yield
        except RuntimeError:  # llama_decode returned 2: aborted
            scope.check()
            raise
        finally:
            llama_cpp.llama_set_abort_callback(context, llama_cpp.ggml_abort_callback(), None)
            undo()

    def _eval_each(self, tokens: list[int], position: int) -> list[np.ndarray]:
        """Evaluate `tokens` after the first `position` ones in one decode, and the log-probabilities of the next
        token after each of them (llama.cpp computes logits for every position asked, in the same batch)."""
        import numpy as np

        llm = self._llm
        if not tokens:
            return []
        if len(tokens) > llm.n_batch:  # longer than one batch: token by token
            out = []
            for i, token in enumerate(tokens):
                llm.n_tokens = position + i
                llm.eval([token])
                out.append(self._last_logprobs())
            return out
        llm.n_tokens = position
        llm._ctx.kv_cache_seq_rm(-1, position, -1)
        llm._batch.set_batch(batch=tokens, n_past=position, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[position : position + len(tokens)] = tokens
        llm.n_tokens = position + len(tokens)
        rows = []
        for i in range(len(tokens)):
            logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(i), shape=(self._n_vocab,)).astype(np.float64)
            logits -= logits.max()
            rows.append(logits - np.log(np.exp(logits).sum()))
        return rows

    def _last_logprobs(self) -> np.ndarray:
        """Log-probabilities of the next token after the last evaluated one. llama-cpp-python keeps no
        logits without logits_all: read llama.cpp's own buffer."""
        import numpy as np

        logits = np.ctypeslib.as_array(self._llm._ctx.get_logits(), shape=(self._n_vocab,)).astype(np.float64)
        logits -= logits.max()
        logprobs: np.ndarray = logits - np.log(np.exp(logits).sum())
        return logprobs


_FLAG_CALLBACK: list[Any] = []


def _flag_callback() -> Any:
    """llama.cpp's abort callback, `bool callback(void *data)`, as the C library's `strlen`: `data` is a 2-byte
    buffer, b"\0\0" (length 0: go on) until a stop writes b"\1" into it (length 1: stop). llama.cpp calls it
    between the nodes of every graph (about 600 per token of the 135M model); a C function costs nothing there,
    where a Python one would take the GIL each time. The ABI fits on every platform llama.cpp runs on: a
    pointer in, an integer out whose low byte is read as the bool."""
    if not _FLAG_CALLBACK:
        import ctypes

        import llama_cpp

        libc = ctypes.CDLL(None)  # the process's own symbols: the C library
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
        assert address is not None
        _FLAG_CALLBACK.append(llama_cpp.ggml_abort_callback(address))
    return _FLAG_CALLBACK[0]


class _Trie:
    """Continuations' token sequences, shared prefixes merged: `ends` lists the continuations ending here."""

    __slots__ = ("children", "ends")

    def __init__(self) -> None:
        self.children: dict[int, _Trie] = {}
        self.ends: list[int] = []
