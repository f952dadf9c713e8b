"""What `logo serve` keeps loaded between requests, and the rules it follows.

- **Who**: every request carries a `Grant` (from its bearer token, `tokens.py`; with `--no-auth` on
  loopback, the admin's). A user's grant acts only as its user: a question, a batch line, a record or a
  profile of anyone else is refused (403) before any work; without a `user`, a request is its user's.
  `/users` needs the admin's.
- **One set of rules**: a question and its options are read by the typed request model (`request.py`), the
  one `logo ask`, `ask -` and `eval` use; every problem is an error before any answer is made or streamed.
  The server adds its own caps: `max_tokens` at most `Limits.max_tokens`.
- **Turns** (`queue.py`): one piece of work at a time, quick work before long, each inside its cancel
  scope: a client that went away or the per-request time limit stops generation at the next token and an
  ingest between batches; a full queue answers ServerBusy (503) at once.
- **The store lock**: each turn takes the same file lock as a CLI command, so the server is one more logo
  process: a CLI ingest waits for a turn in flight, and a turn waits for a CLI ingest. Between turns the lock
  is free, so `logo ingest` and `logo build-global` run beside a server. Before each turn the server checks
  whether the store or global memory changed on disk (file sizes and times, the CURRENT pointer) and, if so,
  reopens them: an answer never reads a stale or half-written store.

Everything returns the same JSON as the CLI's `--json` and raises the same LogoErrors (the HTTP layer turns
them into status codes).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import __version__, global_memory
from ..cancel import Cancelled
from ..config import Settings
from ..errors import BadRecord, Denied, UsageError
from ..local_memory.locking import store_lock
from ..records import parse_time, parse_user
from ..tokens import Grant
from .queue import LONG, QUICK, Scheduler, Ticket

if TYPE_CHECKING:
    from ..request import QuestionRequest

ADMIN = Grant(id="no-auth", user=None, admin=True, created=0.0, note="--no-auth: every request is the admin's")
BATCH_HINT = "Fix the line and send the batch again: nothing of it was answered."


@dataclass(frozen=True)
class Limits:
    """What the server bounds, and its defaults (`logo serve --help`, docs/commands.md)."""

    max_tokens: int = 512  # an open answer's longest; the 135M model writes ~80 tokens/s on 2 cores
    time_limit: float = 60.0  # seconds one answer (one batch question, one ingest) may run once it has its turn
    max_waiting: int = 16  # requests that may wait for a turn; one more is 503 at once
    max_body: int = 8 << 20  # bytes of a request body, checked before it is read


@dataclass
class Stats:
    started: float = field(default_factory=time.time)
    requests: int = 0
    answers: int = 0
    reloads: int = 0
    cancelled: int = 0
    timed_out: int = 0


class Service:
    def __init__(self, settings: Settings, wait: float | None = None, limits: Limits | None = None) -> None:
        from ..request import Askers

        self.settings = settings
        self.wait = wait  # how long a turn waits for a CLI process that holds the store
        self.limits = limits or Limits()
        self.stats = Stats()
        self.queue = Scheduler(
            max_waiting=self.limits.max_waiting, max_wait=self.limits.time_limit, time_limit=self.limits.time_limit
        )
        self._askers = Askers(settings)
        self._seen: tuple[Any, ...] | None = None
        self._alone = threading.Lock()  # belt and braces: the scheduler already runs one turn at a time
        self._counting = threading.Lock()

    # ----- the rules
    @contextmanager
    def turn(self, ticket: Ticket, lane: str | None = None) -> Iterator[None]:
        """One turn: the service to itself, the store lock, and memory as it is on disk now. A cancelled turn
        is counted (a gone client, a time limit)."""
        try:
            with self.queue.turn(ticket, lane), self._alone, store_lock(self.settings.home, self.wait):
                self.stats.requests += 1
                now = self._fingerprint()
                if now != self._seen:
                    if self._seen is not None:
                        self.stats.reloads += 1
                    self._drop()
                    self._seen = now
                yield
        except Cancelled as exc:
            with self._counting:  # a ticket cancelled while it waited holds no turn
                self.stats.cancelled += 1
                self.stats.timed_out += exc.timed_out
            raise

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

    # ----- reading requests: every check before any work
    def read_question(self, body: Any, grant: Grant) -> QuestionRequest:
        """A `POST /ask` body as the typed request, for this grant's user. UsageError (400) or Denied (403)."""
        from ..request import BatchDefaults, read_line

        defaults = BatchDefaults(user=grant.user) if grant.user else None
        try:
            request = read_line(body, defaults, user_hint=False)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self._check(request, grant)
        return request

    def read_batch(self, body: Any, grant: Grant) -> list[QuestionRequest]:
        """Every question of a batch, checked before any is answered: a bad line is an error (422, its line
        number), another user's line a Denied (403), and nothing is answered."""
        from pydantic import ValidationError

        from ..request import BatchDefaults, invalid, read_line

        if not isinstance(body, dict) or not isinstance(body.get("questions"), list):
            raise UsageError('expected {"questions": [...], "defaults": {...}}')
        unknown = sorted(set(body) - {"questions", "defaults"})
        if unknown:
            raise UsageError(f'unknown field `{unknown[0]}`: a batch is {{"questions": [...], "defaults": {{...}}}}')
        raw = body.get("defaults")
        try:
            defaults = BatchDefaults.model_validate({} if raw is None else raw)
        except ValidationError as exc:
            raise UsageError(f"`defaults`: {invalid(exc)}") from None
        if grant.user is not None:
            if defaults.user not in (None, grant.user):
                raise self._denied(defaults.user or "", grant)
            defaults = defaults.model_copy(update={"user": grant.user})
        out = []
        for number, line in enumerate(body["questions"], start=1):
            try:
                request = read_line(line, defaults, user_hint=False)
            except ValueError as exc:
                raise BadRecord("<request>", number, str(exc), BATCH_HINT) from None
            self._check(request, grant, number)
            out.append(request)
        return out

    def _check(self, request: QuestionRequest, grant: Grant, line: int | None = None) -> None:
        if not grant.may_act_for(request.user):
            raise self._denied(request.user, grant, line)
        if request.max_tokens > self.limits.max_tokens:
            where = f"<request>:{line}: " if line is not None else ""
            raise UsageError(
                f"{where}`max_tokens` must be at most {self.limits.max_tokens} on this server, "
                f"not {request.max_tokens}",
                "Ask for fewer tokens; the server's cap is `logo serve --max-tokens-limit`.",
            )

    @staticmethod
    def _denied(user: str, grant: Grant, line: int | None = None) -> Denied:
        where = f"<request>:{line}: " if line is not None else ""
        return Denied(
            f"{where}this token acts only for user {grant.user!r}, not {user!r}.",
            "Use that user's token, or the admin's for an application backend.",
        )

    @staticmethod
    def lane(request: QuestionRequest) -> str:
        """Long work generates text; everything else is one scoring pass at most."""
        from ..answers import AnswerType

        return LONG if request.question().resolved_type() == AnswerType.OPEN else QUICK

    # ----- answering (in a worker thread, with a ticket from `queue.admit`)
    def ask(self, request: QuestionRequest, ticket: Ticket) -> dict[str, Any]:
        with self.turn(ticket, self.lane(request)):
            answer = self._askers.get(request).answer(request.question())
            self.stats.answers += 1
        return answer.to_json(include_prompt=request.show_prompt)

    def ask_stream(self, request: QuestionRequest, ticket: Ticket, on_token: Callable[[str], None]) -> dict[str, Any]:
        """The answer, with each piece of an open answer given to `on_token` as it is generated."""
        with self.turn(ticket, self.lane(request)):
            answer = self._askers.get(request).answer(request.question(), on_token=on_token)
            self.stats.answers += 1
        return answer.to_json(include_prompt=request.show_prompt)

    def answer_batch(self, batch: list[QuestionRequest], ticket: Ticket) -> Iterator[dict[str, Any]]:
        """Answers, one turn each: other requests (and a CLI ingest) get turns between them."""
        for request in batch:
            with self.turn(ticket, self.lane(request)):
                answer = self._askers.get(request).answer(request.question())
                self.stats.answers += 1
            yield answer.to_json(include_prompt=request.show_prompt)

    def read_ingest(self, data: bytes, params: dict[str, str], grant: Grant) -> tuple[bytes, bool, int]:
        """The body (a user's records only, theirs implied where a record names nobody) and the options."""
        from pydantic import ValidationError

        from ..request import IngestParams, invalid

        try:
            options = IngestParams.model_validate(params, strict=False)
        except ValidationError as exc:
            raise UsageError(invalid(exc)) from None
        if grant.user is not None:
            data = own_records(data, grant.user)
        return data, options.skip_invalid, options.batch_size

    def ingest(self, data: bytes, skip_invalid: bool, batch_size: int, ticket: Ticket) -> dict[str, Any]:
        from ..embed import load_embedder
        from ..local_memory.ingest import IngestStopped, IngestSummary, ingest
        from ..local_memory.store import store_for

        invalid: list[str] = []
        stopped = [False]

        def between_batches(_: IngestSummary) -> None:
            if not stopped[0]:  # once: the ingest then settles the batch in flight and reports what it stored
                try:
                    ticket.check()
                except Cancelled:
                    stopped[0] = True
                    raise

        with self.turn(ticket, LONG):
            embedder = load_embedder(self.settings.embedder_spec())
            try:
                summary = ingest(
                    [("<request>", io.BytesIO(data))],
                    store_for(self.settings),
                    embedder,
                    skip_invalid=skip_invalid,
                    batch_size=batch_size,
                    on_batch=between_batches,
                    on_invalid=lambda line: invalid.append(str(line)),
                )
            except IngestStopped as exc:
                if isinstance(exc.cause, Cancelled):
                    exc.hint = "What was stored stays; send the rest again (a re-run adds only what is missing)."
                raise
            finally:  # our own writes: open it all again (an answer made before may have found no store)
                self._drop()
                self._seen = self._fingerprint()
        return {**summary.to_json(), "skipped": invalid}

    @staticmethod
    def read_users(grant: Grant) -> Grant:
        """Only the admin's grant lists everybody."""
        if not grant.admin:
            raise Denied("Only the admin's token lists every user.", "A user's token reads its own /profile.")
        return grant

    def users(self, grant: Grant, ticket: Ticket) -> list[dict[str, Any]]:
        from ..status import users

        self.read_users(grant)
        with self.turn(ticket):
            return users(self.settings)

    def read_profile(self, params: dict[str, str], grant: Grant) -> tuple[str, float | None, Any]:
        from pydantic import ValidationError

        from ..request import Thresholds, invalid

        user = params.get("user") or grant.user
        if not user:
            raise UsageError("missing `user`", "For example /profile?user=maya")
        if not grant.may_act_for(user):
            raise self._denied(user, grant)
        try:
            when = parse_time(params["at"]) if params.get("at") else None
        except ValueError as exc:
            raise UsageError(f"`at`: {exc}") from None
        try:
            thresholds = Thresholds.model_validate(
                {k: v for k, v in params.items() if k in Thresholds.model_fields}, strict=False
            )
        except ValidationError as exc:
            raise UsageError(invalid(exc)) from None
        return user, when, thresholds.mediator()

    def profile(self, user: str, when: float | None, options: Any, ticket: Ticket) -> dict[str, Any]:
        from ..views import profile_view

        with self.turn(ticket):
            return profile_view(self.settings, user, when, options)

    def health(self, grant: Grant | None) -> dict[str, Any]:
        """Whether it is up, for anyone; where its data is and what it did, for the admin only."""
        out: dict[str, Any] = {"ok": True, "version": __version__}
        if grant is None or not grant.admin:
            return out
        return {
            **out,
            "home": str(self.settings.home),
            "store": self.settings.chroma_url or str(self.settings.store_dir),
            "global_memory": global_memory.exists(self.settings.global_dir),
            "uptime_s": round(time.time() - self.stats.started, 1),
            "requests": self.stats.requests,
            "answers": self.stats.answers,
            "reloads": self.stats.reloads,
            "cancelled": self.stats.cancelled,
            "timed_out": self.stats.timed_out,
            **self.queue.state(),
            "limits": {
                "max_tokens": self.limits.max_tokens,
                "time_limit_s": self.limits.time_limit,
                "max_waiting": self.limits.max_waiting,
                "max_body_bytes": self.limits.max_body,
            },
        }


def own_records(data: bytes, user: str) -> bytes:
    """A user token's ingest body: every record is the user's. A record naming nobody becomes theirs; one
    naming anyone else refuses the whole body (Denied, nothing stored). Lines are split, decoded and read as
    the ingest reader does (`records.py`), so a line this skips as unreadable the ingest refuses too."""
    out = []
    for number, raw in enumerate(io.BytesIO(data), start=1):
        line = raw[3:] if number == 1 and raw.startswith(b"\xef\xbb\xbf") else raw
        try:
            obj = orjson.loads(line) if line.strip() else None
        except orjson.JSONDecodeError:
            obj = None  # the ingest reports it as the bad line it is
        if not isinstance(obj, dict):
            out.append(raw)
            continue
        try:
            owner = parse_user(obj)
        except ValueError:  # names nobody: the token's user
            obj = {k: v for k, v in obj.items() if k not in ("user", "user_id")} | {"user": user}
            out.append(orjson.dumps(obj) + (b"\n" if raw.endswith(b"\n") else b""))
            continue
        if owner != user:
            raise Denied(
                f"<request>:{number}: a record of user {owner!r}; this token writes only {user!r}'s records.",
                "Nothing was stored. Send only this user's records, or use the admin's token.",
            )
        out.append(raw)
    return b"".join(out)
