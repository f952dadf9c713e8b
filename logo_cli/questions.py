"""Questions as JSONL lines, the input of `logo ask -` and `logo eval`: one parser, so both accept the same
fields and a bad line gets the same `FILE:LINE: reason`.

A line is an object with `user` (or `user_id`), `query` (or `question`), and optionally `id`, `at` (ISO 8601
or epoch seconds), `candidates` (or `options`: at least two strings), `answer_type` (auto, rating, choice,
recommend, open), `count` (items to recommend, 1-50) and, for `logo eval`, `gold` (a number, a string, or
a list of item names) and optionally `item` (the item a rating question is about), `variant` and `genre`
(which the plain references read: a genre question's references rank only that genre).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .answers import ANSWER_TYPES, MAX_COUNT, AnswerType
from .errors import QUESTIONS_HINT, BadRecord
from .records import parse_time, parse_user, read_jsonl_objects

Gold = float | str | list[str]
EVAL_META = ("item", "variant", "genre")  # what an eval line may say about itself, for references and splits


@dataclass
class QuestionLine:
    user: str
    query: str
    id: str | None
    at: float | None
    candidates: list[str] | None
    answer_type: AnswerType
    count: int | None
    gold: Gold | None
    meta: dict[str, Any] = field(default_factory=dict)  # eval lines: `item`, `variant`, `genre` (for references)


@dataclass
class Defaults:
    """What a line that lacks a field gets (`ask`'s --user, --at, --answer-type, --count)."""

    user: str | None = None
    at: float | None = None
    answer_type: AnswerType = AnswerType.AUTO
    count: int | None = None


def parse_question(obj: Any, defaults: Defaults = Defaults(), *, gold: bool = False) -> QuestionLine:  # noqa: B008
    """Validate one decoded line. Raises ValueError with a reason that names the field at fault."""
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    if defaults.user is not None and "user" not in obj and "user_id" not in obj:
        user = defaults.user
    else:
        try:
            user = parse_user(obj)
        except ValueError as exc:
            raise ValueError(f"{exc}{' (or pass --user for lines without one)' if not gold else ''}") from None
    query = obj.get("query", obj.get("question"))
    if not isinstance(query, str) or not query.strip():
        raise ValueError("missing or empty `query`")
    when = defaults.at
    if obj.get("at") is not None:
        try:
            when = parse_time(obj["at"])
        except ValueError as exc:
            raise ValueError(f"field `at`: {exc}") from None
    options = obj.get("candidates", obj.get("options"))
    if options is not None and (
        not isinstance(options, list)
        or len(options) < 2
        or not all(isinstance(o, str) and o.strip() for o in options)
    ):
        raise ValueError("`candidates` must be a list of at least two non-empty strings")
    kind = obj.get("answer_type", defaults.answer_type.value)
    if kind not in ANSWER_TYPES:
        raise ValueError(f"`answer_type` must be one of {', '.join(ANSWER_TYPES)}")
    count = obj.get("count", defaults.count)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT):
        raise ValueError(f"`count` must be an integer from 1 to {MAX_COUNT}")
    value = obj.get("gold")
    if gold:
        value = _gold(value, options)
    return QuestionLine(
        user=user,
        query=query,
        id=str(obj["id"]) if obj.get("id") is not None else None,
        at=when,
        candidates=options,
        answer_type=AnswerType(kind),
        count=count,
        gold=value,
        meta={k: obj[k] for k in EVAL_META if isinstance(obj.get(k), str)} if gold else {},
    )


def _gold(value: Any, options: list[str] | None) -> Gold:
    if isinstance(value, list):
        if not value or not all(isinstance(g, str) for g in value):
            raise ValueError("a list `gold` must be a non-empty list of item names")
        return list(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("`gold` must be a number, a string or a list of item names")
    if options is not None and value not in options:
        raise ValueError("`gold` must be one of the `candidates`")
    return value


def read_questions(
    path: str,
    defaults: Defaults = Defaults(),  # noqa: B008
    *,
    gold: bool = False,
) -> Iterator[tuple[int, QuestionLine]]:
    """(line number, question) for each line of a JSONL file (`-`: stdin); a bad line raises BadRecord."""
    source = "<stdin>" if path == "-" else path
    for line, obj in read_jsonl_objects(path):
        try:
            yield line, parse_question(obj, defaults, gold=gold)
        except ValueError as exc:
            raise BadRecord(source, line, str(exc), QUESTIONS_HINT) from None
