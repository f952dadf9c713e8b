"""The typed request: a question and its options, as `logo ask`, a line of `logo ask -` or `logo eval`, and a
`logo serve` request all give it. One pydantic model reads them all, with the defaults and ranges of
`rules.py`, so every way in accepts the same values and refuses the same ones with the same words.

- `Thresholds`: who is cold-start or biased (ask, eval, profile).
- `AskOptions`: `Thresholds` plus memory, retrieval and generation options (every option of `logo ask`).
- `QuestionRequest`: `AskOptions` plus the question (`user`, `query`, `id`, `at`, `candidates`,
  `answer_type`, `count`) and `show_prompt`: a `POST /ask` body, one line of a batch.
- `EvalLine`: a question line of `logo eval`, with its `gold` and what it says about itself.
- `BatchDefaults`: what a batch's lines lack (`POST /ask/batch`'s `defaults`, `ask -`'s flags).

Aliases a line may use: `user_id` for `user`, `question` for `query`, `options` for `candidates`. Values are
typed strictly (JSON's `true` is not an integer, `"5"` is not a number). Fields a line carries beyond these
are ignored (question files carry their own metadata), except in `BatchDefaults`, which is logo's own
envelope. `invalid(exc)` turns a ValidationError into one sentence that names the field.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import rules
from .answers.kinds import ANSWER_TYPES, AnswerType
from .records import parse_time

if TYPE_CHECKING:
    from .ask import Asker, GenerationOptions, Question
    from .config import Settings
    from .mediator import MediatorOptions

# logo uses no pydantic plugin, and looking for them (importlib.metadata's entry points) costs about 15 ms of
# a one-shot command: the models below are built without (typer does the same for its own adapters).
_PLUGINS = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
os.environ["PYDANTIC_DISABLE_PLUGINS"] = "1"

Gold = float | str | list[str]
EVAL_META = ("item", "variant", "genre")  # what an eval line may say about itself, for references and splits
GENERATION = ("max_tokens", "temperature", "seed")  # how the model writes, not what memory it reads
ALIASES = {"user_id": "user", "question": "query", "options": "candidates"}
CANDIDATES_RULE = "`candidates` must be a list of at least two non-empty strings"


def _field(rule: rules.Rule) -> Any:
    return Field(rule.default, ge=rule.ge, le=rule.le, description=rule.help)


class Thresholds(BaseModel):
    """Who is cold-start (little history) and who is biased (a long, narrow history)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    cold_start_max: int = _field(rules.COLD_START_MAX)
    biased_min_history: int = _field(rules.BIASED_MIN_HISTORY)
    biased_max_diversity: float = _field(rules.BIASED_MAX_DIVERSITY)

    def mediator(self, **more: Any) -> MediatorOptions:
        from .mediator import MediatorOptions

        return MediatorOptions(
            cold_start_max=self.cold_start_max,
            biased_min_history=self.biased_min_history,
            biased_max_diversity=self.biased_max_diversity,
            **more,
        )


class AskOptions(Thresholds):
    """Every option of an answer: which memory, how much of it, and how the model generates."""

    memory: str = _field(rules.MEMORY)
    local: str = _field(rules.LOCAL)
    local_k: int = _field(rules.LOCAL_K)
    global_k: int = _field(rules.GLOBAL_K)
    max_tokens: int = _field(rules.MAX_TOKENS)
    temperature: float = _field(rules.TEMPERATURE)
    seed: int = _field(rules.SEED)

    @field_validator("memory", "local")
    @classmethod
    def _one_of(cls, value: str, info: Any) -> str:
        choices = rules.ASK_OPTIONS[info.field_name].choices or ()
        if value not in choices:
            raise ValueError(f"`{info.field_name}` must be one of {', '.join(choices)}, not {value!r}")
        return value

    def options(self) -> AskOptions:
        """These options alone (a QuestionRequest's, without its question)."""
        return AskOptions.model_construct(**{name: getattr(self, name) for name in AskOptions.model_fields})

    def mediator(self, **more: Any) -> MediatorOptions:
        from .modes import Memory

        return super().mediator(
            memory=Memory(self.memory),
            local_mode=self.local,
            local_k=self.local_k,
            global_k=self.global_k,
            **more,
        )

    def generation(self) -> GenerationOptions:
        from .ask import GenerationOptions

        return GenerationOptions(self.max_tokens, self.temperature, self.seed)


def _aliased(data: Any) -> Any:
    """A line's aliases under their names (`user_id` -> `user`, ...), a name that is given winning; null is
    the same as absent."""
    if not isinstance(data, dict):
        return data
    out = {k: v for k, v in data.items() if k not in ALIASES and v is not None}
    for alias, name in ALIASES.items():
        if out.get(name) is None and data.get(alias) is not None:
            out[name] = data[alias]
    return out


def _user_value(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # as records read it: numbers become strings
    if not isinstance(value, str) or not value.strip():
        raise ValueError("missing or empty `user` (or `user_id`)")
    return value.strip()


def _time_value(value: Any) -> float:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise ValueError(f"field `at`: {exc}") from None


def _answer_type_value(value: Any) -> str:
    if value not in ANSWER_TYPES:
        raise ValueError(f"`answer_type` must be one of {', '.join(ANSWER_TYPES)}")
    return str(value)


class QuestionRequest(AskOptions):
    """A question and its options: a `POST /ask` body, a line of a batch, a line of `logo ask -`."""

    user: str
    query: str
    id: str | None = None
    at: float | None = None  # answer as of this time (epoch seconds): only records strictly before it
    candidates: list[str] | None = None
    answer_type: str = AnswerType.AUTO.value
    count: int | None = _field(rules.COUNT)
    show_prompt: bool = False

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return _aliased(data)

    _user = field_validator("user", mode="before")(_user_value)
    _at = field_validator("at", mode="before")(_time_value)
    _answer_type = field_validator("answer_type", mode="before")(_answer_type_value)

    @field_validator("query", mode="before")
    @classmethod
    def _query(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("missing or empty `query`")
        if len(value) > rules.QUERY_MAX_CHARS:
            raise ValueError(f"`query` has {len(value)} characters; at most {rules.QUERY_MAX_CHARS} are read")
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError("`id` must be a string or a number")
        text = str(value)
        if len(text) > rules.ID_MAX_CHARS:
            raise ValueError(f"`id` is longer than {rules.ID_MAX_CHARS} characters")
        return text

    @field_validator("candidates", mode="before")
    @classmethod
    def _candidates(cls, value: Any) -> list[str]:
        if (
            not isinstance(value, list)
            or not 2 <= len(value) <= rules.CANDIDATES_MAX
            or not all(isinstance(o, str) and o.strip() for o in value)
        ):
            raise ValueError(f"{CANDIDATES_RULE} (at most {rules.CANDIDATES_MAX})")
        return value

    def question(self) -> Question:
        from .ask import Question

        return Question(
            self.user, self.query, self.id, self.at, self.candidates, AnswerType(self.answer_type), self.count
        )


class EvalLine(QuestionRequest):
    """A line of `logo eval`: a question with its `gold`, and what it says about itself (`item`, `variant`,
    `genre`, which the plain references read)."""

    gold: float | str | list[str]
    meta: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _meta(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, "meta": {k: data[k] for k in EVAL_META if isinstance(data.get(k), str)}}
        return data

    @field_validator("gold", mode="before")
    @classmethod
    def _gold(cls, value: Any) -> Gold:
        if isinstance(value, list):
            if not value or not all(isinstance(g, str) for g in value):
                raise ValueError("a list `gold` must be a non-empty list of item names")
            return list(value)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("`gold` must be a number, a string or a list of item names")
        return value

    @model_validator(mode="after")
    def _gold_is_an_option(self) -> EvalLine:
        if self.candidates is not None and self.gold not in self.candidates:
            raise ValueError("`gold` must be one of the `candidates`")
        return self


class BatchDefaults(AskOptions):
    """What a batch's lines lack: `ask -`'s --user, --at, --answer-type, --count and options, or a
    `POST /ask/batch`'s `defaults`. Unknown names are refused here: this is logo's own envelope."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    user: str | None = None
    at: float | None = None
    answer_type: str = AnswerType.AUTO.value
    count: int | None = _field(rules.COUNT)
    show_prompt: bool = False

    _user = field_validator("user", mode="before")(_user_value)
    _at = field_validator("at", mode="before")(_time_value)
    _answer_type = field_validator("answer_type", mode="before")(_answer_type_value)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError('`defaults` must be a JSON object of options, e.g. {"memory": "local"}')
        return _aliased(data)

    def values(self) -> dict[str, Any]:
        """The fields that a line lacking them takes (no question of its own)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def read_line(
    obj: Any, defaults: BatchDefaults | None = None, *, gold: bool = False, user_hint: bool = True
) -> QuestionRequest:
    """One question line over `defaults`: a field the line gives wins. Raises ValueError with one sentence
    (`user_hint`: a line without a user mentions --user)."""
    model = EvalLine if gold else QuestionRequest
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    data = _aliased(obj)
    if defaults is not None:
        data = {**defaults.values(), **data}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reason = invalid(exc)
        if reason.startswith("missing or empty `user`") and user_hint and not gold:
            reason += " (or pass --user for lines without one)"
        raise ValueError(reason) from None


def invalid(exc: ValidationError) -> str:
    """The first problem of a ValidationError as one sentence that names the field."""
    error = exc.errors(include_url=False)[0]
    field = str(error["loc"][0]) if error["loc"] else None
    kind = error["type"]
    if kind == "value_error":  # one of ours: already a sentence
        return str(error["ctx"]["error"])
    if kind == "missing":
        if field == "query":
            return "missing or empty `query`"
        if field == "user":
            return "missing or empty `user` (or `user_id`)"
        return f"missing `{field}`"
    if kind == "extra_forbidden":
        return f"unknown field `{field}`"
    rule = rules.ASK_OPTIONS.get(field or "") or {"count": rules.COUNT}.get(field or "")
    if rule is not None:
        return f"`{field}` must be {rule.expects()}, not {_shown(error.get('input'))}"
    expected = {"bool_type": "true or false", "string_type": "a string"}.get(kind)
    if expected is not None:
        return f"`{field}` must be {expected}, not {_shown(error.get('input'))}"
    return f"`{field}`: {error['msg']}" if field else str(error["msg"])


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class IngestParams(BaseModel):
    """`POST /ingest`'s query: `logo ingest`'s options."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    skip_invalid: bool = False
    batch_size: int = _field(rules.BATCH_SIZE)


if _PLUGINS is None:
    del os.environ["PYDANTIC_DISABLE_PLUGINS"]
else:
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = _PLUGINS


class Askers:
    """One `Asker` per set of memory options, made on first use: a batch's lines may carry options of their own,
    and each set loads global memory and opens the store once. Generation options (max_tokens, temperature,
    seed) need no new one: the asker answers with the request's. Used by one thread at a time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._made: dict[tuple[Any, ...], Asker] = {}

    def get(self, options: AskOptions) -> Asker:
        generation = options.generation()
        key = tuple(getattr(options, name) for name in AskOptions.model_fields if name not in GENERATION)
        if key not in self._made:
            from .ask import Asker

            self._made[key] = Asker(self.settings, options.mediator(), generation)
        asker = self._made[key]
        asker.generation = generation
        return asker

    def clear(self) -> None:
        self._made.clear()
