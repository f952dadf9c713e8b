"""What `logo serve` keeps loaded between requests, and the rules it follows.

- The store lock: every request takes the same file lock as a CLI command, for as long as it runs, so the
  server is one more logo process: a CLI ingest waits for a request in flight (and a request waits for a
  CLI ingest), and nobody reads a store another process is writing.
- Between requests the lock is free, so `logo ingest` and `logo build-global` run beside a server. Before
  each request the server checks whether the store or global memory changed on disk (file sizes and times,
  the CURRENT pointer) and, if so, reopens them: an answer never reads a stale or half-written store.
- One request at a time: llama.cpp runs one context, and a request holds the store lock anyway.

Everything returns the same JSON as the CLI's `--json` and raises the same LogoErrors (the HTTP layer turns
them into status codes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from .. import __version__, global_memory
from ..answers import ANSWER_TYPES, AnswerType
from ..ask import Asker, GenerationOptions, Question
from ..config import Settings
from ..errors import BadRecord, UsageError
from ..local_memory.locking import store_lock
from ..mediator import checked_options
from ..questions import Defaults, QuestionLine, parse_question
from ..records import parse_time

ASK_OPTIONS = {  # request field -> (type, default): the same defaults as `logo ask`
    "memory": (str, "logo"),
    "local": (str, "rag"),
    "local_k": (int, 4),
    "global_k": (int, 3),
    "cold_start_max": (int, 3),
    "biased_min_history": (int, 20),
    "biased_max_diversity": (float, 0.7),
    "max_tokens": (int, 160),
    "temperature": (float, 0.0),
    "seed": (int, 0),
}


@dataclass
class Stats:
    started: float = field(default_factory=time.time)
    requests: int = 0
    answers: int = 0
    reloads: int = 0


class Service:
    def __init__(self, settings: Settings, wait: float | None = None) -> None:
        self.settings = settings
        self.wait = wait  # how long a request waits for a CLI process that holds the store
        self.stats = Stats()
        self._askers: dict[tuple[Any, ...], Asker] = {}
        self._seen: tuple[Any, ...] | None = None
        self._busy = threading.Lock()

    # ----- the rules
    @contextmanager
    def turn(self) -> Iterator[None]:
        """One request's turn: the service to itself, the store lock, and memory as it is on disk now."""
        with self._busy, store_lock(self.settings.home, self.wait):
            self.stats.requests += 1
            now = self._fingerprint()
            if now != self._seen:
                if self._seen is not None:
                    self.stats.reloads += 1
                self._drop()
                self._seen = now
            yield

    def _fingerprint(self) -> tuple[Any, ...]:
        """What changes when another process writes the store or builds global memory."""
        from ..local_memory.store import GENERATION_FILE

        parts: list[Any] = []
        for path in (self.settings.store_dir / GENERATION_FILE, self.settings.global_dir / global_memory.POINTER):
            try:
                parts.append(path.read_text())
            except OSError:
                parts.append(None)
        return tuple(parts)

    def _drop(self) -> None:
        """Forget open stores and loaded global memory (the models stay: they do not change on disk)."""
        from ..local_memory.store import reset_clients

        self._askers.clear()
        if not self.settings.chroma_url:
            reset_clients()  # Chroma caches one client per folder: a new one must read the folder again

    def warm(self) -> None:
        """Load the embedder and the model before the first request (`logo serve` does it at start); a home
        with no store or global memory yet is fine: /ingest fills it."""
        from ..embed import load_embedder
        from ..llm import generator_for

        load_embedder(self.settings.embedder_spec()).embed(["warm up"])
        generator_for(self.settings)
        self._seen = self._fingerprint()  # what is on disk at start: a write after it is a change

    # ----- requests
    def _asker(self, body: dict[str, Any]) -> Asker:
        values: dict[str, Any] = {}
        for name, (kind, default) in ASK_OPTIONS.items():
            value = body.get(name, default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise UsageError(f"`{name}` must be {kind.__name__}, not {value!r}.")
            values[name] = value
        options = checked_options(
            memory=values["memory"],
            local_mode=values["local"],
            local_k=values["local_k"],
            global_k=values["global_k"],
            cold_start_max=values["cold_start_max"],
            biased_min_history=values["biased_min_history"],
            biased_max_diversity=values["biased_max_diversity"],
        )
        generation = GenerationOptions(values["max_tokens"], values["temperature"], values["seed"])
        key = (repr(options), repr(generation))
        if key not in self._askers:
            self._askers[key] = Asker(self.settings, options, generation)
        return self._askers[key]

    def question(self, body: dict[str, Any], defaults: Defaults | None = None) -> Question:
        try:
            line: QuestionLine = parse_question(body, defaults or Defaults())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return Question(line.user, line.query, line.id, line.at, line.candidates, line.answer_type, line.count)

    def ask(self, body: dict[str, Any]) -> dict[str, Any]:
        question = self.question(body)
        with self.turn():
            answer = self._asker(body).answer(question)
        self.stats.answers += 1
        return answer.to_json(include_prompt=bool(body.get("show_prompt")))

    def ask_stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """{"token": text} for each piece of an open answer as it is generated, then {"answer": the JSON}."""
        import queue

        question = self.question(body)
        pieces: queue.Queue[dict[str, Any] | None] = queue.Queue()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self.turn():
                    answer = self._asker(body).answer(question, on_token=lambda t: pieces.put({"token": t}))
                self.stats.answers += 1
                pieces.put({"answer": answer.to_json(include_prompt=bool(body.get("show_prompt")))})
            except BaseException as exc:  # reported to the client as the stream's last line
                failure.append(exc)
            finally:
                pieces.put(None)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        while (piece := pieces.get()) is not None:
            yield piece
        worker.join()
        if failure:
            raise failure[0]

    def batch(self, lines: list[Any], defaults: dict[str, Any]) -> list[tuple[Question, dict[str, Any]]]:
        """Every question of a batch checked before any is answered: a bad line is an error, not a half batch."""
        try:
            at = parse_time(defaults["at"]) if defaults.get("at") is not None else None
        except ValueError as exc:
            raise UsageError(f"`at`: {exc}") from None
        kind = defaults.get("answer_type", "auto")
        if kind not in ANSWER_TYPES:
            raise UsageError(f"`answer_type` must be one of {', '.join(ANSWER_TYPES)}")
        base = Defaults(user=defaults.get("user"), at=at, answer_type=AnswerType(kind), count=defaults.get("count"))
        out = []
        for number, line in enumerate(lines, start=1):
            try:
                parsed = parse_question(line, base)
            except ValueError as exc:  # as `logo ask -` reports a bad line: exit 3
                raise BadRecord("<request>", number, str(exc)) from None
            question = Question(
                parsed.user, parsed.query, parsed.id, parsed.at, parsed.candidates, parsed.answer_type, parsed.count
            )
            out.append((question, {**defaults, **line}))
        return out

    def answer_batch(self, batch: list[tuple[Question, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        """Answers, one turn each (a CLI ingest can slip in between two of them)."""
        for question, options in batch:
            with self.turn():
                answer = self._asker(options).answer(question)
            self.stats.answers += 1
            yield answer.to_json(include_prompt=bool(options.get("show_prompt")))

    def ingest(self, stream: BinaryIO, *, skip_invalid: bool = False, batch_size: int = 2048) -> dict[str, Any]:
        from ..embed import load_embedder
        from ..local_memory.ingest import ingest
        from ..local_memory.store import store_for

        invalid: list[str] = []
        with self.turn():
            embedder = load_embedder(self.settings.embedder_spec())
            try:
                summary = ingest(
                    [("<request>", stream)],
                    store_for(self.settings),
                    embedder,
                    skip_invalid=skip_invalid,
                    batch_size=batch_size,
                    on_invalid=lambda line: invalid.append(str(line)),
                )
            finally:  # our own writes: open it all again (an answer made before may have found no store)
                self._drop()
                self._seen = self._fingerprint()
        return {**summary.to_json(), "skipped": invalid}

    def users(self) -> list[dict[str, Any]]:
        from ..status import users

        with self.turn():
            return users(self.settings)

    def profile(self, user: str, at: str | None, **thresholds: Any) -> dict[str, Any]:
        from ..mediator import MediatorOptions
        from ..views import profile_view

        try:
            when = parse_time(at) if at is not None else None
        except ValueError as exc:
            raise UsageError(f"`at`: {exc}") from None
        with self.turn():
            return profile_view(self.settings, user, when, MediatorOptions(**thresholds))

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "version": __version__,
            "home": str(self.settings.home),
            "store": self.settings.chroma_url or str(self.settings.store_dir),
            "global_memory": global_memory.exists(self.settings.global_dir),
            "uptime_s": round(time.time() - self.stats.started, 1),
            "requests": self.stats.requests,
            "answers": self.stats.answers,
            "reloads": self.stats.reloads,
        }
