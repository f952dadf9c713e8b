"""Answer types: what kind of answer a question wants, and how each kind is read off memory and the model.

A 135M model cannot be trusted to invent facts; it can choose among, order and phrase facts that memory
hands it. So `logo ask` gives each question a type, by this rule (first match wins; `--answer-type` or a
batch line's `answer_type` forces one):

1. **choice**: the batch line carries `candidates` (or `options`), or the question lists its options
   (`A) ... B) ...`, `1. ... 2. ...` or `options: x, y, z`). The answer is the option the model finds most
   likely (mean log-likelihood per token), with every option's score.
2. **rating**: the question asks for a rating, score or stars (`rate`, `rating`, `stars`, `score`,
   `out of N`, `/5`). The answer is a number on the question's scale (`on a 0.5-5 scale`, `out of 10`,
   `from 1 to 5`), else the data's (the ratings global memory saw: MovieLens has half stars), else 1-5. It
   is read off the model's likelihood of each value by the `anchored` head (below), then a sentence says
   where it comes from.
3. **recommend**: the question asks for suggestions (`recommend`, `suggest`, `ideas`, `what should I
   watch/cook/read/...`). The items come from memory only (see `answers/recommend.py`); a count in the question
   (`three films`, `10 books`) is honoured, default 5.
4. **open**: everything else: generated text, kept short, cut at the first repetition loop.

Rating heads, from the log-likelihoods of `Rating: v/HI` for each value v of the scale:
- model: the model's distribution as it is;
- calibrated: divided by the model's distribution for a content-free question (contextual calibration,
  Zhao et al. 2021), which removes its own leaning toward some values whatever the prompt says;
- anchored (default): the calibrated distribution times a Gaussian around the mediator's estimate (sd
  ANCHOR_SD stars on a 5-star range): memory's estimate, reshaped by what the model reads in the prompt.
  Without an estimate it is the model head (calibration alone blows up rare values).
The answer is the head's median value (the least expected absolute error), on the scale.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .choice import ChoiceAnswer, OptionScore, choice_answer, choice_text
    from .kinds import (
        ANSWER_TYPES,
        DEFAULT_COUNT,
        MAX_COUNT,
        AnswerType,
        asks_rating,
        asks_recommendation,
        detect,
        options_in,
        requested_count,
    )
    from .rating import (
        DEFAULT_HEAD,
        RATING_HEADS,
        RatingAnswer,
        RatingScale,
        expected_value,
        given_rating,
        head_distribution,
        own_rating_reason,
        rating_answer,
        rating_reason,
        rating_text,
        rescale,
        scale_for,
        scale_from_question,
    )
    from .recommend import GENERIC_REQUEST, Recommendation, RecommendInput, recommendation_text
    from .text import looping

# Each name's module, imported on first use: `kinds` (the rule) is pure Python, while `choice`, `rating` and
# `recommend` bring numpy, which a command that only sends a question to `logo serve` never needs. The ranker
# itself is `answers.recommend.recommend`: at package level, `recommend` is its module (as Python binds a
# submodule on its parent), so it is not re-exported under the same name.
_MODULES = {
    **dict.fromkeys(["ChoiceAnswer", "OptionScore", "choice_answer", "choice_text"], "choice"),
    **dict.fromkeys(
        ["ANSWER_TYPES", "DEFAULT_COUNT", "MAX_COUNT", "AnswerType", "asks_rating", "asks_recommendation", "detect",
         "options_in", "requested_count"],
        "kinds",
    ),
    **dict.fromkeys(
        ["DEFAULT_HEAD", "RATING_HEADS", "RatingAnswer", "RatingScale", "expected_value", "given_rating",
         "head_distribution", "own_rating_reason", "rating_answer", "rating_reason", "rating_text", "rescale",
         "scale_for", "scale_from_question"],
        "rating",
    ),
    **dict.fromkeys(
        ["GENERIC_REQUEST", "Recommendation", "RecommendInput", "recommendation_text"], "recommend"
    ),
    "looping": "text",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


__all__ = [
    "ANSWER_TYPES",
    "DEFAULT_COUNT",
    "DEFAULT_HEAD",
    "GENERIC_REQUEST",
    "MAX_COUNT",
    "RATING_HEADS",
    "AnswerType",
    "ChoiceAnswer",
    "OptionScore",
    "RatingAnswer",
    "RatingScale",
    "RecommendInput",
    "Recommendation",
    "asks_rating",
    "asks_recommendation",
    "choice_answer",
    "choice_text",
    "detect",
    "expected_value",
    "given_rating",
    "head_distribution",
    "looping",
    "options_in",
    "own_rating_reason",
    "rating_answer",
    "rating_reason",
    "rating_text",
    "recommendation_text",
    "requested_count",
    "rescale",
    "scale_for",
    "scale_from_question",
]
