"""Answering questions: load the models and memories once, then for each question embed it, retrieve,
mediate, and answer it by its type (the `answers` package): a rating read off the model's scores and memory's
estimate, the best-scored option, items recommended from memory, or short generated text. `logo ask` and
`logo eval` both call `Asker.answer`, so what eval scores is what ask prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from . import global_memory, rules
from .answers import (
    DEFAULT_COUNT,
    GENERIC_REQUEST,
    AnswerType,
    ChoiceAnswer,
    OptionScore,
    RatingAnswer,
    RatingScale,
    Recommendation,
    RecommendInput,
    choice_answer,
    choice_text,
    detect,
    given_rating,
    looping,
    options_in,
    own_rating_reason,
    rating_answer,
    rating_reason,
    rating_text,
    recommendation_text,
    requested_count,
    rescale,
    scale_for,
)
from .answers.recommend import recommend
from .config import Settings
from .embed import Embedder, load_embedder
from .errors import GlobalMemoryMissing, StoreError, UsageError
from .evidence import UserEvidence, stated_scores
from .global_memory import GlobalMemory, UserProfile
from .llm import Generator, Usage, check_gguf, generator_for
from .local_memory.store import Hit, Store, store_for
from .mediator import SYSTEM_PROMPT, Context, MediatorOptions, build_messages, mediate
from .records import Record, format_time

CANDIDATES = 8  # the user's nearest records fetched before the mediator picks
CONTENT_FREE = "How would this user rate N/A?"  # the calibration question: it names nothing


@dataclass
class Question:
    user: str
    query: str
    id: str | None = None
    at: float | None = None  # answer as of this time: only records strictly before it
    candidates: list[str] | None = None  # options to choose from (a batch line's `candidates`/`options`)
    answer_type: AnswerType = AnswerType.AUTO
    count: int | None = None  # items to recommend; None: what the question asks for, else DEFAULT_COUNT

    def resolved_type(self) -> AnswerType:
        if self.answer_type != AnswerType.AUTO:
            return self.answer_type
        return detect(self.query, self.candidates)


@dataclass
class GenerationOptions:
    max_tokens: int = rules.MAX_TOKENS.default  # the defaults and ranges of what people set: rules.py
    temperature: float = rules.TEMPERATURE.default
    seed: int = rules.SEED.default


@dataclass
class Prepared:
    """Everything before the answer: the mediator's context, the prompt, and the user's history when the
    answer type reads it."""

    context: Context
    messages: list[dict[str, str]]
    timings: dict[str, float]
    vector: np.ndarray
    evidence: UserEvidence
    history: list[Record] = field(default_factory=list)
    history_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))


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
    privacy: dict[str, Any] | None = None  # what protects the population statistics the answer read
    answer_type: AnswerType = AnswerType.OPEN
    rating: RatingAnswer | None = None
    choice: ChoiceAnswer | None = None
    recommendations: list[Recommendation] | None = None
    note: str | None = None  # why the answer type differs from the one asked for, if it does

    @property
    def value(self) -> Any:
        """The answer as data: the rating, the chosen option, the recommended items, or the text."""
        if self.rating is not None:
            return self.rating.value
        if self.choice is not None:
            return self.choice.option
        if self.recommendations is not None:
            return [r.item for r in self.recommendations]
        return self.answer

    def to_json(self, *, include_prompt: bool = False) -> dict[str, Any]:
        ctx = self.context
        out: dict[str, Any] = {
            "id": self.question.id,
            "user": self.question.user,
            "query": self.question.query,
            "at": format_time(self.question.at) if self.question.at is not None else None,
            "answer": self.answer,
            "answer_type": self.answer_type.value,
            "answer_value": self.value,
        }
        if self.note:
            out["note"] = self.note
        if self.rating is not None:
            out["rating"] = self.rating.to_json()
        if self.choice is not None:
            out["choices"] = self.choice.scores
        if self.recommendations is not None:
            out["recommendations"] = [r.to_json() for r in self.recommendations]
        out |= {
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
            "privacy": self.privacy,
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
        self._priors: dict[RatingScale, list[float]] = {}
        self._catalog: GlobalMemory | None = None
        self._history: Store | None = None
        self._generic: np.ndarray | None = None
        self.store: Store | None = None
        self.memory: GlobalMemory | None = None
        if options.memory.reads_global:
            if not global_memory.versions.on_disk(settings.global_dir):
                raise GlobalMemoryMissing(asking=True)
            self.memory = global_memory.load(settings.global_dir)
        if options.memory.reads_any:
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

    @property
    def catalog(self) -> GlobalMemory | None:
        """Global memory's items, which every memory mode recommends from (modes differ in how they rank).
        None when no global memory is built."""
        if self.memory is not None:
            return self.memory
        if self._catalog is None and global_memory.exists(self.settings.global_dir):
            self._catalog = global_memory.load(self.settings.global_dir)
        return self._catalog

    def prepare(self, question: Question, vector: np.ndarray | None = None, *, prompt: bool = True) -> Prepared:
        """Everything before the answer: the mediator's context, what memory knows about the user and the items
        (`evidence`) and (with `prompt`) the prompt messages. `vector` is the question's embedding when the
        caller embedded many questions in one batch."""
        if not question.query.strip():
            raise UsageError("The question is empty.")
        kind = question.resolved_type()
        reads = self.options.memory
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        needs_vector = reads.reads_any or kind == AnswerType.RECOMMEND
        if vector is None:
            vector = self.embedder.embed([question.query])[0] if needs_vector else np.zeros(1, dtype=np.float32)
        timings["embed"] = _ms(clock)

        clock = time.perf_counter()
        hits: list[Hit] = []
        hit_vectors: np.ndarray | None = None
        history = 0
        profile: UserProfile | None = None
        records: list[Record] = []
        vectors = np.zeros((0, 0), dtype=np.float32)
        store = self.store
        if store is None and kind == AnswerType.RECOMMEND and not reads.reads_any:
            store = self._history_store()  # recommending leaves out what the user already has
        if store is not None:
            wants_records = kind == AnswerType.RECOMMEND or (
                reads.reads_local
                and (kind in (AnswerType.RATING, AnswerType.CHOICE) or self.options.local_mode != "rag")
            )
            if wants_records:
                records, vectors = store.user_history(question.user, question.at)
                ids = [r.uid for r in records]
            else:
                ids, vectors = store.user_vectors(question.user, question.at)
            history = len(vectors)
            if history and reads.reads_local:
                hits, hit_vectors = store.nearest(
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
        memory = self.memory if reads.reads_global else None
        if memory is not None and question.at is not None:
            memory = memory.as_of(question.at)  # population statistics from before --at only
        catalog = memory or self.catalog
        if catalog is not None and memory is None and question.at is not None:
            catalog = catalog.as_of(question.at)
        evidence = UserEvidence(memory, catalog, records, vectors, reads)
        ctx = mediate(
            vector if reads.reads_any else np.zeros(1, dtype=np.float32),
            hits,
            hit_vectors,
            history if reads.reads_any else 0,
            profile,
            memory,
            self.options,
            records,
            evidence,
            question.query,
        )
        evidence.community = ctx.community.id if ctx.community is not None else None
        messages = self._messages(ctx, question.query) if prompt else []
        timings["mediate"] = _ms(clock)
        return Prepared(ctx, messages, timings, vector, evidence, records, vectors)

    def _messages(self, ctx: Context, query: str) -> list[dict[str, str]]:
        return build_messages(ctx, query, self.generator.count_tokens, self.options.prompt_budget)

    def _history_store(self) -> Store | None:
        """The store for reading a user's history when the memory mode itself reads none (`none`)."""
        if self._history is None:
            store = store_for(self.settings)
            if store.exists():
                self._history = store.open(self.embedder.id, self.embedder.dim, create=False)
        return self._history

    def answer(
        self,
        question: Question,
        on_token: Callable[[str], None] | None = None,
        vector: np.ndarray | None = None,
    ) -> Answer:
        """The typed answer to one question (the type by `answers.detect` unless the question forces one)."""
        kind = question.resolved_type()
        if kind != AnswerType.RECOMMEND:  # recommendations come from memory: they need no model
            _ = self.generator  # load the models before timing the phases
        if (self.options.memory.reads_any or kind == AnswerType.RECOMMEND) and not self._warm:
            self.embedder.embed(["warm up"])  # the first call loads the weights
            self._warm = True
        started = time.perf_counter()
        if kind == AnswerType.CHOICE and not (question.candidates or options_in(question.query)):
            raise UsageError(
                "A choice needs options.", "Give `candidates` in the batch line, or list them in the question."
            )
        prepared = self.prepare(question, vector, prompt=kind != AnswerType.RECOMMEND)
        ctx, timings = prepared.context, prepared.timings
        result = Answer(
            question=question,
            answer="",
            context=ctx,
            messages=prepared.messages,
            models={"llm": None, "embedder": None},
            usage=Usage(),
            global_version=self.memory.version if self.memory else None,
            privacy=self.memory.privacy(brief=True) if self.memory else None,
            answer_type=kind,
        )
        clock = time.perf_counter()
        if kind == AnswerType.RECOMMEND:
            self._recommend(question, prepared, result)
            timings["recommend"] = _ms(clock)
            if result.answer_type != AnswerType.RECOMMEND:  # nothing in memory fits: open text after all
                clock = time.perf_counter()
                result.messages = prepared.messages = self._messages(ctx, question.query)
                timings["mediate"] = round(timings["mediate"] + _ms(clock), 2)
        clock = time.perf_counter()
        read_by_model = True
        if result.answer_type == AnswerType.RATING:
            read_by_model = self._rate(question, prepared, result)
        elif result.answer_type == AnswerType.CHOICE:
            self._choose(question, prepared, result)
        elif result.answer_type == AnswerType.OPEN:
            result.answer = self._generate(prepared.messages, result.usage, on_token)
        if result.answer_type != AnswerType.RECOMMEND:
            timings["generate"] = _ms(clock)
            result.models["llm"] = self.generator.id if read_by_model else None
        timings["total"] = _ms(started)
        result.timings_ms = timings
        result.models["embedder"] = self._embedder.id if self._embedder else None
        result.models["embedder_runtime"] = self._embedder.runtime if self._embedder else None
        return result

    def _rate(self, question: Question, prepared: Prepared, result: Answer) -> bool:
        """The rating answer; False when no model read it (the user's own rating of the item named)."""
        memory = self.memory or self.catalog
        rating_range = memory.rating_range if memory else None
        rating_step = memory.rating_step if memory else None
        scale = scale_for(question.query, rating_range, rating_step)
        data_scale = scale_for("", rating_range, rating_step)  # what memory's figures are on
        ctx = prepared.context
        estimate = None
        if ctx.evidence and ctx.evidence.get("rating_estimate") is not None:
            estimate = rescale(float(ctx.evidence["rating_estimate"]), data_scale, scale)
        own = (ctx.evidence or {}).get("own_rating")
        if own is not None and estimate is not None:  # the user rated it: that is the answer, not the model's
            if (scale.low, scale.high) == (data_scale.low, data_scale.high):  # "out of 5" keeps their half stars
                scale = replace(scale, step=min(scale.step, data_scale.step))
            result.rating = given_rating(scale.snap(estimate), scale)
            result.answer = rating_text(result.rating, own_rating_reason(own, data_scale))
            return False
        prior = self._prior(scale)
        scores = [x.logprob for x in self.generator.score(prepared.messages, scale.candidates(), result.usage)]
        result.rating = rating_answer(scores, prior, estimate, scale)
        result.answer = rating_text(result.rating, rating_reason(ctx.evidence, ctx.memory, scale))
        return True

    def _choose(self, question: Question, prepared: Prepared, result: Answer) -> None:
        """The best option by what memory knows about this user and each option, and the model's scores of the
        options after the prompt (one evaluation, scored as a trie: no dearer than a rating)."""
        options = question.candidates or options_in(question.query) or []
        model = self.generator.score(prepared.messages, options, result.usage)
        evidence = prepared.evidence
        reads = self.options.memory
        catalog = evidence.catalog
        table = catalog.items if catalog is not None and reads.reads_any else None
        rows = [table.find(o, evidence.snapshot) if table is not None else None for o in options]
        known = iter(evidence.items([r for r in rows if r is not None]))
        scored = []
        for option, row, x in zip(options, rows, model, strict=True):
            item = next(known) if row is not None else None
            popular = None
            if row is not None and reads.reads_global and evidence.snapshot is not None:
                popular = float(np.log1p(evidence.snapshot.users[row]))
            scored.append(OptionScore(option, x.mean, x.logprob, evidence=item, popular=popular))
        said = evidence.stated_clauses(prepared.vector)
        if said:  # what the user said they like or avoid, clause by clause, against every option
            vectors = self.embedder.embed([text for text, _ in said] + list(options))
            stated, liked, avoided, avoided_sim = stated_scores(
                vectors[len(said) :], vectors[: len(said)], [s for _, s in said]
            )
            for o, score, like, avoid, near in zip(scored, stated, liked, avoided, avoided_sim, strict=True):
                o.stated, o.avoided_similarity = float(score), float(near)
                o.liked_clause = said[like][0] if like is not None else None
                o.avoided_clause = said[avoid][0] if avoid is not None else None
        scale = catalog.rating_range[1] if catalog is not None and catalog.rating_range else None
        result.choice = choice_answer(scored, scale)
        result.answer = choice_text(result.choice)

    def _prior(self, scale: RatingScale) -> list[float]:
        """The model's leaning over the scale for a question that names nothing: computed once per model and
        scale, then kept in $LOGO_HOME/priors.json, so a one-shot `ask` does not pay for it again."""
        if scale not in self._priors:
            from .priors import PriorCache

            blank = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": CONTENT_FREE}]
            cache = PriorCache(self.settings.home / "priors.json")
            key = cache.key(self.generator.id, self.model_path, self.generator.render(blank), scale.candidates())
            found = cache.get(key)
            if found is None:
                found = [x.logprob for x in self.generator.score(blank, scale.candidates(), Usage())]
                cache.put(key, found)
            self._priors[scale] = found
        return self._priors[scale]

    def _recommend(self, question: Question, prepared: Prepared, result: Answer) -> None:
        catalog = prepared.evidence.catalog  # global memory's items as of the question, in every mode
        ctx = prepared.context
        count = question.count or requested_count(question.query) or DEFAULT_COUNT
        items: list[Recommendation] = []
        if catalog is None and question.answer_type == AnswerType.RECOMMEND:
            raise GlobalMemoryMissing()  # asked for items, and no memory holds any: not a text about nothing
        if catalog is not None:
            items = recommend(catalog, self.recommend_request(question.query, prepared), count)
        if not items:
            result.answer_type = AnswerType.OPEN
            result.note = (
                "no global memory to recommend from: run `logo build-global`"
                if catalog is None
                else "no shared item in memory fits this question: answered as open text"
            )
            return
        result.recommendations = items
        if len(items) < count:
            plural = "s" if len(items) != 1 else ""
            result.note = f"memory holds {len(items)} shared item{plural} that fit this question"
        scale = catalog.rating_range[1] if catalog is not None and catalog.rating_range else None
        result.answer = recommendation_text(items, scale, population=ctx.memory.reads_global)

    def recommend_request(self, query: str, prepared: Prepared) -> RecommendInput:
        """What the ranker reads of a prepared question: its vector, what memory knows about the user and the
        items, and the mediator's weights (bench/recommend_select.py ranks the same input under other
        constants)."""
        ctx = prepared.context
        return RecommendInput(
            question_vector=prepared.vector,
            evidence=prepared.evidence,
            w_local=ctx.weights["local"],
            w_global=ctx.weights["global"],
            query=query,
            generic_vector=self._generic_vector(),
        )

    def _generic_vector(self) -> np.ndarray:
        if self._generic is None:
            self._generic = self.embedder.embed([GENERIC_REQUEST])[0]
        return self._generic

    def _generate(self, messages: list[dict[str, str]], usage: Usage, on_token: Callable[[str], None] | None) -> str:
        """Generated text, stopped at the first repetition loop (small models loop on a phrase)."""
        text = ""
        shown = 0  # what on_token has been given: only whole sentences, so a loop cut never takes it back
        for piece in self.generator.stream(
            messages,
            max_tokens=self.generation.max_tokens,
            temperature=self.generation.temperature,
            seed=self.generation.seed,
            usage=usage,
        ):
            text = (text + piece).lstrip() if not text else text + piece
            cut = looping(text)
            if cut is not None:
                text = text[: max(cut, shown)]
                break
            if on_token:
                end = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind("\n"))
                if end + 1 > shown:
                    on_token(text[shown : end + 1])
                    shown = end + 1
        text = text.rstrip()
        if on_token and len(text) > shown:
            on_token(text[shown:])
        return text


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)
