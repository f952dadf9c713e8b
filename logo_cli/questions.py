"""Questions as JSONL lines, the input of `logo ask -` and `logo eval`: one parser, so both accept the same
fields and a bad line gets the same `FILE:LINE: reason`.

A line is an object with `user` (or `user_id`), `query` (or `question`), and optionally `id`, `at` (ISO 8601
or epoch seconds), `candidates` (or `options`: at least two strings), `answer_type` (auto, rating, choice,
recommend, open), `count` (items to recommend, 1-50), any of `ask`'s options by name (`memory`, `local_k`, ...: over the
command's flags) and, for `logo eval`, `gold` (a number, a string, or a list of item names) and optionally
`item` (the item a rating question is about), `variant` and `genre` (which the plain references read: a
genre question's references rank only that genre). The rules (types, ranges, defaults) are the typed request
of `request.py`, which `logo serve` reads its requests with too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .answers import AnswerType
from .errors import BadRecord
from .records import read_jsonl_objects

if TYPE_CHECKING:
    from .request import AskOptions, BatchDefaults

Gold = float | str | list[str]


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
    options: AskOptions | None = None  # the line's options over the defaults' (`ask -` answers with them)
    show_prompt: bool = False


def parse_question(obj: Any, defaults: BatchDefaults | None = None, *, gold: bool = False) -> QuestionLine:
    """Validate one decoded line (the typed request of `request.py`) over `defaults`. Raises ValueError with a
    reason that names the field at fault."""
    from .request import EvalLine, read_line

    line = read_line(obj, defaults, gold=gold)
    return QuestionLine(
        user=line.user,
        query=line.query,
        id=line.id,
        at=line.at,
        candidates=line.candidates,
        answer_type=AnswerType(line.answer_type),
        count=line.count,
        gold=line.gold if isinstance(line, EvalLine) else None,
        meta=dict(line.meta) if isinstance(line, EvalLine) else {},
        options=line.options(),
        show_prompt=line.show_prompt,
    )


def read_questions(
    path: str,
    defaults: BatchDefaults | None = None,
    *,
    gold: bool = False,
) -> Iterator[tuple[int, QuestionLine]]:
    """(line number, question) for each line of a JSONL file (`-`: stdin); a bad line raises BadRecord."""
    source = "<stdin>" if path == "-" else path
    try:
        for line, obj in read_jsonl_objects(path):
            try:
                question = parse_question(obj, defaults, gold=gold)
            except ValueError as exc:
                raise BadRecord(source, line, str(exc)) from None
            yield line, question
    except BadRecord as exc:  # what to do next depends on whether the lines before it were answered
        raise BadRecord(exc.source, exc.line, exc.reason, _hint(exc.line, scored=gold)) from None


def _hint(line: int, *, scored: bool) -> str:
    if scored:  # `logo eval` reads every line before it scores one
        return "Fix the line and run again: nothing was scored."
    return (
        f"Fix the line and go on from it: the questions before it were answered "
        f"(`tail -n +{line} FILE | logo ask -`)."
    )
