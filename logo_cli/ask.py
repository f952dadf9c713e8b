"""Answering questions: load the models and memories once, then for each question embed it, retrieve,
mediate, and generate. Used by `logo ask` for one question or a batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import global_memory
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import GlobalMemoryMissing, StoreError, UsageError
from .global_memory import GlobalMemory, UserProfile
from .llm import Generator, Usage, check_gguf, generator_for
from .mediator import Context, MediatorOptions, build_messages, mediate
from .records import Record, format_time
from .store import Hit, Store, store_for

CANDIDATES = 8  # the user's nearest records fetched before the mediator picks


@dataclass
class Question:
    user: str
    query: str
    id: str | None = None
    at: float | None = None  # answer as of this time: only records strictly before it


@dataclass
class GenerationOptions:
    max_tokens: int = 160
    temperature: float = 0.0
    seed: int = 0


@dataclass
class Answer:
    question: Question
    answer: str
    context: Context
    messages: list[dict[str, str]]
    models: dict[str, str | None]
    usage: Usage
    timings_ms: dict[str, float] = field(default_factory=dict)
    global_version: str | None = None

    def to_json(self, *, include_prompt: bool = False) -> dict[str, Any]:
        ctx = self.context
        out: dict[str, Any] = {
            "id": self.question.id,
            "user": self.question.user,
            "query": self.question.query,
            "at": format_time(self.question.at) if self.question.at is not None else None,
            "answer": self.answer,
            "memory": ctx.memory,
            "weights": ctx.weights,
            "flags": ctx.flags(),
            "signals": ctx.signals(),
            "local": [
                {
                    "id": h.record.source_id or h.record.uid,
                    "text": h.record.text,
                    "item": h.record.item,
                    "rating": h.record.rating,
                    "timestamp": format_time(h.record.timestamp) if h.record.timestamp is not None else None,
                    "score": round(h.score, 4),
                }
                for h in ctx.local
            ],
            "global": [
                {
                    "cluster": u.cluster.id,
                    "source": u.source,
                    "score": round(u.score, 4),
                    "keywords": u.cluster.keywords,
                    "users": u.cluster.users,
                    "size": u.cluster.size,
                    "top_items": [item for item, _ in u.cluster.top_items],
                    "rating_mean": u.cluster.rating_mean,
                }
                for u in ctx.global_
            ],
            "community": (
                {"id": ctx.community.id, "size": ctx.community.size, "source": ctx.community_source}
                if ctx.community
                else None
            ),
            "profile": ctx.profile_lines,
            "evidence": ctx.evidence,
            "models": self.models,
            "global_version": self.global_version,
            "tokens": {"prompt": self.usage.prompt_tokens, "completion": self.usage.completion_tokens},
            "timings_ms": self.timings_ms,
        }
        if include_prompt:
            out["prompt"] = self.messages
        return out


class Asker:
    """Holds the loaded embedder, store, global memory and model, so a batch loads each once."""

    def __init__(self, settings: Settings, options: MediatorOptions, generation: GenerationOptions) -> None:
        self.settings = settings
        self.options = options
        self.generation = generation
        self.model_path = settings.model if settings.llm_url else settings.model_path()
        if self.model_path != "fake" and not settings.llm_url:
            check_gguf(self.model_path)  # fail before any slow work
        self._embedder: Embedder | None = None
        self._warm = False
        self._generator: Generator | None = None
        self.store: Store | None = None
        self.memory: GlobalMemory | None = None
        needs_global = options.memory in ("logo", "global")
        if needs_global:
            if not global_memory.exists(settings.global_dir):
                raise GlobalMemoryMissing()
            self.memory = global_memory.load(settings.global_dir)
        if options.memory != "none":
            embedder = self.embedder
            if self.memory is not None and self.memory.embedder != embedder.id:
                raise StoreError(
                    f"Global memory was built with {self.memory.embedder}, but the embedder in use is {embedder.id}.",
                    "Use the same --embedder as when you ingested, or rebuild with `logo build-global`.",
                )
            store = store_for(settings)
            if store.exists():
                self.store = store.open(embedder.id, embedder.dim, create=False)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.embedder_spec())
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = generator_for(self.settings)
        return self._generator

    def prepare(
        self, question: Question, vector: np.ndarray | None = None
    ) -> tuple[Context, list[dict[str, str]], dict[str, float]]:
        """Everything before generation: the mediator's context and the prompt messages. `vector` is the
        question's embedding when the caller embedded many questions in one batch."""
        if not question.query.strip():
            raise UsageError("The question is empty.")
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        if self.options.memory == "none":
            vector = np.zeros(1, dtype=np.float32)
        elif vector is None:
            vector = self.embedder.embed([question.query])[0]
        timings["embed"] = _ms(clock)

        clock = time.perf_counter()
        hits: list[Hit] = []
        hit_vectors: np.ndarray | None = None
        history = 0
        profile: UserProfile | None = None
        records: list[Record] = []
        if self.store is not None:
            wants_records = self.options.memory in ("logo", "local") and self.options.local_mode != "rag"
            if wants_records:
                records, vectors = self.store.user_history(question.user, question.at)
                ids = [r.uid for r in records]
            else:
                ids, vectors = self.store.user_vectors(question.user, question.at)
            history = len(vectors)
            if history and self.options.memory in ("logo", "local"):
                hits, hit_vectors = self.store.nearest(
                    question.user, ids, vectors, vector, min(CANDIDATES, history), records if wants_records else None
                )
            if self.memory is not None:
                known = self.memory.users.get(question.user)
                profile = (
                    known
                    if known is not None and question.at is None and known.history == history
                    else self.memory.profile_from_vectors(question.user, vectors)
                )
        timings["retrieve"] = _ms(clock)

        clock = time.perf_counter()
        memory = self.memory if self.options.memory in ("logo", "global") else None
        if memory is not None and question.at is not None:
            memory = memory.as_of(question.at)  # population statistics from before --at only
        ctx = mediate(vector, hits, hit_vectors, history, profile, memory, self.options, records)
        messages = build_messages(ctx, question.query, self.generator.count_tokens, self.options.prompt_budget)
        timings["mediate"] = _ms(clock)
        return ctx, messages, timings

    def answer(self, question: Question, on_token: Callable[[str], None] | None = None) -> Answer:
        generator = self.generator  # load the models before timing the phases
        if self.options.memory != "none" and not self._warm:
            self.embedder.embed(["warm up"])  # the first call loads the weights
            self._warm = True
        started = time.perf_counter()
        ctx, messages, timings = self.prepare(question)
        clock = time.perf_counter()
        usage = Usage()
        pieces: list[str] = []
        for piece in generator.stream(
            messages,
            max_tokens=self.generation.max_tokens,
            temperature=self.generation.temperature,
            seed=self.generation.seed,
            usage=usage,
        ):
            pieces.append(piece)
            if on_token:
                on_token(piece)
        timings["generate"] = _ms(clock)
        timings["total"] = _ms(started)
        return Answer(
            question=question,
            answer="".join(pieces).strip(),
            context=ctx,
            messages=messages,
            models={"llm": generator.id, "embedder": self._embedder.id if self._embedder else None},
            usage=usage,
            timings_ms=timings,
            global_version=self.memory.version if self.memory else None,
        )


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
